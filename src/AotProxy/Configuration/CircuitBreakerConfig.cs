using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [circuit_breaker]: one breaker per worker, fed by the gateway's own requests.
internal sealed record CircuitBreakerConfig
{
    // Consecutive failures (transport errors, 5xx, slow first bytes) that open the circuit.
    public int FailureThreshold { get; init; } = 5;

    // Successes in half-open that close it again.
    public int SuccessThreshold { get; init; } = 2;

    public string OpenTimeout { get; init; } = "30s";

    public int HalfOpenMaxRequests { get; init; } = 1;

    // A first byte later than this counts as a failure: 60 s is past any healthy prefill.
    public string SlowCallThreshold { get; init; } = "60s";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
