namespace AotProxy.Limits;

// The pacer's answer: whether the request goes, how long it waited for that, and (timed out)
// when a retry has a fair chance.
internal readonly record struct PacingResult(PacingOutcome Outcome, TimeSpan Waited, int RetryAfterSeconds = 0)
{
    public static PacingResult Now => default;
}
