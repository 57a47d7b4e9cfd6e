using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [retries]: a request is retried on another worker only while no response byte has reached the client.
internal sealed record RetryConfig
{
    // Tries per request, the first included; 1 turns retries off.
    public int MaxAttempts { get; init; } = 3;

    public string BackoffBase { get; init; } = "50ms";

    public string BackoffMax { get; init; } = "1s";

    // Retries may add at most this share of load over a 10 s window (Finagle's RetryBudget), so a
    // failing fleet never sees a retry storm.
    public double BudgetRatio { get; init; } = 0.2;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
