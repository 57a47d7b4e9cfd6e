namespace AotProxy.Tenancy;

// An admin change's outcome, with the message the client gets when it is not Done.
internal readonly record struct TenancyResult(TenancyOutcome Outcome, string Message)
{
    public static TenancyResult Done { get; } = new(TenancyOutcome.Done, "");

    public bool IsDone => Outcome == TenancyOutcome.Done;
}
