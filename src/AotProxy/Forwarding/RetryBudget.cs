using AotProxy.Routing;

namespace AotProxy.Forwarding;

// Finagle's retry budget: over the last 10 s, retries may add at most budget_ratio of the
// requests, plus a floor of 10 so that a quiet gateway can still retry a lone failure. One per
// gateway: when the whole fleet fails, retries stay at about 20% extra load instead of
// multiplying it by max_attempts.
internal sealed class RetryBudget(TimeProvider time)
{
    private const int Floor = 10;

    // Requests, with retries flagged.
    private readonly OutcomeWindow _window = new();

    public void OnRequest() => _window.Record(flagged: false, Second());

    public bool CanRetry(double ratio)
    {
        var (retries, total) = _window.Counts(Second());
        return retries + 1 <= (ratio * (total - retries)) + Floor;
    }

    // Checks and spends in one call; two racing retries may both pass, which a budget tolerates.
    public bool TrySpend(double ratio)
    {
        if (!CanRetry(ratio))
        {
            return false;
        }

        _window.Record(flagged: true, Second());
        return true;
    }

    private long Second() => time.GetTimestamp() / time.TimestampFrequency;
}
