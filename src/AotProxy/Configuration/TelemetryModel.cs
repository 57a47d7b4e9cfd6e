namespace AotProxy.Configuration;

// [telemetry] validated.
internal sealed record TelemetryModel(int MaxTenantSeries)
{
    // 1,000 tenants x the tenant-labelled series each (7 with a budget and every refusal reason)
    // stays in the thousands of series a Prometheus holds without notice.
    public const int DefaultMaxTenantSeries = 1000;

    public static TelemetryModel Default { get; } = new(DefaultMaxTenantSeries);
}
