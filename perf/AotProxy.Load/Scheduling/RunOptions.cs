namespace AotProxy.Load.Scheduling;

internal sealed record RunOptions
{
    // null: the profile's [scenario] target.
    public Uri? Target { get; init; }

    // Used by [[mix]] entries without their own api_key, instead of [scenario] api_key.
    public string? Key { get; init; }

    public double DurationScale { get; init; } = 1;

    public double RateScale { get; init; } = 1;

    // Called on the scheduling thread before each open-loop send, with the send's index. Tests
    // stall the schedule through it, the way a GC pause or a starved CPU would.
    public Action<long>? BeforeOpenLoopSend { get; init; }

    // Non-null: every request's outcome also goes here (`--requests FILE`).
    public Recording.RequestLog? Log { get; init; }
}
