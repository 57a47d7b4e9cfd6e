namespace AotProxy.Configuration;

// [telemetry] validated. Tracing is on when OtlpTraces, otlp_endpoint's {otlp_endpoint}/v1/traces, is set.
internal sealed record TelemetryModel(int MaxTenantSeries, Uri? OtlpTraces = null, string ServiceName = TelemetryModel.DefaultServiceName, double SampleRatio = 1.0, int MaxQueuedSpans = TelemetryModel.DefaultMaxQueuedSpans)
{
    // 1,000 tenants x the tenant-labelled series each (7 with a budget and every refusal reason)
    // stays in the thousands of series a Prometheus holds without notice.
    public const int DefaultMaxTenantSeries = 1000;

    public const string DefaultServiceName = "aotproxy";

    // The OTel SDK's batch processor default: a few seconds of spans at thousands of requests a
    // second, bounded memory (each span holds a few hundred bytes) while the receiver is away.
    public const int DefaultMaxQueuedSpans = 2048;

    public static TelemetryModel Default { get; } = new(DefaultMaxTenantSeries);

    public bool Tracing => OtlpTraces is not null;
}
