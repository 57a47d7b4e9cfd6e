using AotProxy.Accounting;
using AotProxy.Gateway;
using AotProxy.Limits;
using Prometheus;

namespace AotProxy.Tests.Gateway;

public sealed class TenantSeriesTests
{
    [Fact]
    public void Label_TheFirstNTenantsSeenKeepTheirNames_LaterOnesAreOther()
    {
        var series = new TenantSeries();
        series.ReadCapFrom(() => 2);

        Assert.Equal(["a", "b", "other", "a", "other", "b"], new[] { "a", "b", "c", "a", "d", "b" }.Select(series.Label));
    }

    // A reload lowers the cap: series that exist stay (their counters continuous); raises it: new
    // tenants get theirs, one folded before stays in other (no second series of it appears later).
    [Fact]
    public void Label_AcrossCapChanges_KeepsEveryTenantWhereItWasFirstPut()
    {
        var cap = 2;
        var series = new TenantSeries();
        series.ReadCapFrom(() => cap);
        Assert.Equal(["a", "b", "other"], new[] { "a", "b", "c" }.Select(series.Label));

        cap = 1;
        Assert.Equal(["a", "b", "other"], new[] { "a", "b", "d" }.Select(series.Label));

        cap = 4;
        Assert.Equal(["other", "other", "e", "f", "other"], new[] { "c", "d", "e", "f", "g" }.Select(series.Label));
    }

    [Fact]
    public void Label_CapZero_FoldsEveryTenant()
    {
        var series = new TenantSeries();
        series.ReadCapFrom(() => 0);

        Assert.Equal(["other", "other"], new[] { "a", "b" }.Select(series.Label));
    }

    // Every metric labelled by tenant folds the same tenants: the usage counters and the rate
    // limiter's, whichever saw a tenant first.
    [Fact]
    public void TenantMetrics_PastTheCap_AreCountedInOther_AndTheFirstNKeepTheirSeries()
    {
        var telemetry = new GatewayTelemetry();
        telemetry.Tenants.ReadCapFrom(() => 2);
        telemetry.Limits.CountCheck("t0");
        telemetry.Usage.CountUsage("t1", new Usage(10, 1));
        for (var i = 0; i < 4; i++)
        {
            var tenant = $"t{i}";
            telemetry.Usage.CountUsage(tenant, new Usage(100 + i, 10 + i, Estimated: true));
            telemetry.Limits.CountCheck(tenant);
            telemetry.Limits.CountRefusal(tenant, LimitRefusal.Requests);
        }

        var text = Scrape(telemetry.Registry);

        Assert.Equal(["other", "t0", "t1"], Tenants(text, "llm_gateway_tokens_total"));
        Assert.Equal(["other", "t0", "t1"], Tenants(text, "llm_gateway_estimated_usage_total"));
        Assert.Equal(["other", "t0", "t1"], Tenants(text, "llm_rate_limiter_requests_total"));
        Assert.Equal(["other", "t0", "t1"], Tenants(text, "llm_rate_limiter_rejected_total"));
        Assert.Equal(102 + 103, Value(text, "llm_gateway_tokens_total{tenant=\"other\",kind=\"prompt\"}"));
        Assert.Equal(10 + 101, Value(text, "llm_gateway_tokens_total{tenant=\"t1\",kind=\"prompt\"}"));
        Assert.Equal(2, Value(text, "llm_rate_limiter_requests_total{tenant=\"t0\"}"));
        Assert.Equal(2, Value(text, "llm_rate_limiter_requests_total{tenant=\"other\"}"));
        Assert.Equal(2, Value(text, "llm_gateway_estimated_usage_total{tenant=\"other\"}"));
    }

    private static string Scrape(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        registry.CollectAndExportAsTextAsync(stream).GetAwaiter().GetResult();
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    // The tenants of a metric's series, sorted.
    private static string[] Tenants(string text, string name) =>
        [.. text.Split('\n')
            .Where(l => l.StartsWith(name + "{tenant=\"", StringComparison.Ordinal))
            .Select(l => l[(name.Length + 9)..l.IndexOf('"', name.Length + 9)])
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)];

    private static double Value(string text, string series) =>
        double.Parse(text.Split('\n').Single(l => l.StartsWith(series + " ", StringComparison.Ordinal))[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
}
