namespace AotProxy.Tests.Configuration;

public sealed class TelemetryConfigTests
{
    [Fact]
    public void Telemetry_Absent_CapsTenantSeriesAtTheDefault() =>
        Assert.Equal(1000, TestConfig.Valid("").Telemetry.MaxTenantSeries);

    [Theory]
    [InlineData(0)]
    [InlineData(25)]
    [InlineData(1_000_000)]
    public void MaxTenantSeries_IsRead(int cap) =>
        Assert.Equal(cap, TestConfig.Valid($"[telemetry]\nmax_tenant_series = {cap}\n").Telemetry.MaxTenantSeries);

    [Theory]
    [InlineData("max_tenant_series = -1", "telemetry.max_tenant_series")]
    [InlineData("max_tenant_series = 1000001", "telemetry.max_tenant_series")]
    [InlineData("max_tenant_series = \"many\"", "telemetry.max_tenant_series")]
    [InlineData("max_tenant_serie = 10", "telemetry.max_tenant_serie")]
    public void Telemetry_InvalidValue_IsRejectedWithItsKeyAndLine(string line, string key)
    {
        var error = TestConfig.SingleError("# metrics\n[telemetry]\n" + line + "\n");

        Assert.Equal(key, error.Key);
        Assert.Equal(3, error.Line);
    }

    [Fact]
    public void Tracing_Absent_IsOff_WithWorkingDefaults()
    {
        var telemetry = TestConfig.Valid("").Telemetry;

        Assert.False(telemetry.Tracing);
        Assert.Equal(("aotproxy", 1.0, 2048), (telemetry.ServiceName, telemetry.SampleRatio, telemetry.MaxQueuedSpans));
    }

    [Theory]
    [InlineData("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces")]
    [InlineData("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces")]
    [InlineData("https://collector.example:443/otel", "https://collector.example/otel/v1/traces")]
    public void OtlpEndpoint_IsTheBaseOfTheTracesUrl(string endpoint, string traces)
    {
        var telemetry = TestConfig.Valid($"[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"gw-eu\"\nsample_ratio = 0.25\nmax_queued_spans = 10\n").Telemetry;

        Assert.True(telemetry.Tracing);
        Assert.Equal(new Uri(traces), telemetry.OtlpTraces);
        Assert.Equal(("gw-eu", 0.25, 10), (telemetry.ServiceName, telemetry.SampleRatio, telemetry.MaxQueuedSpans));
    }

    [Theory]
    [InlineData("otlp_endpoint = \"127.0.0.1:4318\"", "telemetry.otlp_endpoint")]
    [InlineData("otlp_endpoint = \"grpc://127.0.0.1:4317\"", "telemetry.otlp_endpoint")]
    [InlineData("otlp_endpoint = \"http://127.0.0.1:4318/?x=1\"", "telemetry.otlp_endpoint")]
    [InlineData("service_name = \" \"", "telemetry.service_name")]
    [InlineData("sample_ratio = 1.5", "telemetry.sample_ratio")]
    [InlineData("sample_ratio = -0.1", "telemetry.sample_ratio")]
    [InlineData("max_queued_spans = 0", "telemetry.max_queued_spans")]
    [InlineData("otlp_endpoints = \"http://127.0.0.1:4318\"", "telemetry.otlp_endpoints")]
    public void Tracing_InvalidValue_IsRejectedWithItsKeyAndLine(string line, string key)
    {
        var error = TestConfig.SingleError("# traces\n[telemetry]\n" + line + "\n");

        Assert.Equal(key, error.Key);
        Assert.Equal(3, error.Line);
    }
}
