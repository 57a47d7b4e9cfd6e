namespace AotProxy.Load.Profiles;

// null: not checked.
internal sealed record Thresholds(TimeSpan? P99Latency, TimeSpan? P99Ttft, double? MaxErrorRate);
