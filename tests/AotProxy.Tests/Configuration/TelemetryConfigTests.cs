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
}
