using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [telemetry]: what the gateway's own metrics may cost the Prometheus that scrapes them.
internal sealed record TelemetryConfig
{
    // Tenants with their own series in the metrics labelled by tenant; the rest: tenant="other".
    public int MaxTenantSeries { get; init; } = TelemetryModel.DefaultMaxTenantSeries;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
