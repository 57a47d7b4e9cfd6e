namespace AotProxy.Configuration.Validation;

// [telemetry]: the cap on tenant series.
internal static class TelemetryRules
{
    // A million tenants' series is past what one Prometheus scrapes well; a larger number is a typo.
    private const int MaxTenantSeries = 1_000_000;

    public static TelemetryModel Validate(ValidationContext context, TelemetryConfig telemetry)
    {
        context.Unknown("telemetry", telemetry.Unknown);
        if (telemetry.MaxTenantSeries is < 0 or > MaxTenantSeries)
        {
            context.Error("telemetry.max_tenant_series", $"must be 0 (every tenant in tenant=\"other\") to {MaxTenantSeries} (got {telemetry.MaxTenantSeries})");
        }

        return new TelemetryModel(Math.Clamp(telemetry.MaxTenantSeries, 0, MaxTenantSeries));
    }
}
