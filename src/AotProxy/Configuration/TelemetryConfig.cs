using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [telemetry]: what the gateway's own metrics may cost the Prometheus that scrapes them, and where
// its traces go.
internal sealed record TelemetryConfig
{
    // Tenants with their own series in the metrics labelled by tenant; the rest: tenant="other".
    public int MaxTenantSeries { get; init; } = TelemetryModel.DefaultMaxTenantSeries;

    // OTLP/HTTP base URL ("http://127.0.0.1:4318"); spans go to {otlp_endpoint}/v1/traces. "": off.
    public string OtlpEndpoint { get; init; } = string.Empty;

    public string ServiceName { get; init; } = TelemetryModel.DefaultServiceName;

    // The share of traces the gateway starts that it records; a client's traceparent decides for its own.
    public double SampleRatio { get; init; } = 1.0;

    // Spans waiting for export; more are dropped (llm_gateway_trace_spans_dropped_total).
    public int MaxQueuedSpans { get; init; } = TelemetryModel.DefaultMaxQueuedSpans;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
