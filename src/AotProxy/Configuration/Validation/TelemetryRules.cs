namespace AotProxy.Configuration.Validation;

// [telemetry]: the cap on tenant series, and trace export.
internal static class TelemetryRules
{
    // A million tenants' series is past what one Prometheus scrapes well; a larger number is a typo.
    private const int MaxTenantSeries = 1_000_000;

    // A million queued spans is hundreds of MB held for a receiver that is away: past that, a typo.
    private const int MaxQueuedSpans = 1_000_000;

    public static TelemetryModel Validate(ValidationContext context, TelemetryConfig telemetry)
    {
        context.Unknown("telemetry", telemetry.Unknown);
        if (telemetry.MaxTenantSeries is < 0 or > MaxTenantSeries)
        {
            context.Error("telemetry.max_tenant_series", $"must be 0 (every tenant in tenant=\"other\") to {MaxTenantSeries} (got {telemetry.MaxTenantSeries})");
        }

        Uri? endpoint = null;
        if (telemetry.OtlpEndpoint.Length > 0)
        {
            if (OtlpUrl.TryParse(telemetry.OtlpEndpoint, out var url))
            {
                endpoint = OtlpUrl.Traces(url);
            }
            else
            {
                context.Error("telemetry.otlp_endpoint", $"must be an http:// or https:// base URL such as \"http://127.0.0.1:4318\" (got \"{telemetry.OtlpEndpoint}\")");
            }
        }

        if (string.IsNullOrWhiteSpace(telemetry.ServiceName))
        {
            context.Error("telemetry.service_name", "must not be empty (it names the gateway in every trace)");
        }

        if (!(telemetry.SampleRatio is >= 0 and <= 1))
        {
            context.Error("telemetry.sample_ratio", $"must be 0 to 1 (got {telemetry.SampleRatio})");
        }

        if (telemetry.MaxQueuedSpans is < 1 or > MaxQueuedSpans)
        {
            context.Error("telemetry.max_queued_spans", $"must be 1 to {MaxQueuedSpans} (got {telemetry.MaxQueuedSpans})");
        }

        return new TelemetryModel(
            Math.Clamp(telemetry.MaxTenantSeries, 0, MaxTenantSeries),
            endpoint,
            telemetry.ServiceName,
            Math.Clamp(telemetry.SampleRatio, 0, 1),
            Math.Clamp(telemetry.MaxQueuedSpans, 1, MaxQueuedSpans));
    }
}
