using AotProxy.Ledger;

namespace AotProxy.Tests.Ledger;

public sealed class UsageQueryTests : IDisposable
{
    private static readonly DateTimeOffset Nov1 = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly LedgerFile _file = new();

    public UsageQueryTests() => _file.Insert(
        LedgerFile.Row(tenant: "acme", model: "a", time: Nov1.AddHours(-1), prompt: 1000, completion: 1000),
        LedgerFile.Row(tenant: "acme", model: "a", time: Nov1.AddHours(1), prompt: 10, completion: 5, cached: 4, cost: 1_500_000_000, requested: "fast"),
        LedgerFile.Row(tenant: "acme", model: "b", time: Nov1.AddDays(1), prompt: 20, completion: 0, status: 429, requested: "auto"),
        LedgerFile.Row(tenant: "beta", model: "b", time: Nov1.AddDays(1).AddHours(23), prompt: 3, completion: 2, estimated: true, status: 499));

    [Fact]
    public void Run_ByTenantSince_SumsEachTenantsRowsInRange()
    {
        var rows = Run(since: "2026-11-01", by: "tenant");

        Assert.Equal(2, rows.Length);
        Assert.Equal(new UsageRow("acme", 2, 30, 5, 4, 0, 1_500_000_000, 1), rows[0]);
        Assert.Equal(1.5m, rows[0].CostUsd);
        Assert.Equal(new UsageRow("beta", 1, 3, 2, 0, 1, 0, 1), rows[1]);
    }

    [Fact]
    public void Run_ByModel_GroupsOverAllTime()
    {
        var rows = Run(by: "model");

        Assert.Equal(["a", "b"], rows.Select(r => r.Key));
        Assert.Equal([2L, 2L], rows.Select(r => r.Requests));
        Assert.Equal([1010L, 23L], rows.Select(r => r.PromptTokens));
    }

    [Fact]
    public void Run_ByRequestedModel_GroupsByTheNameTheClientSent()
    {
        var rows = Run(by: "requested_model");

        Assert.Equal(["a", "auto", "b", "fast"], rows.Select(r => r.Key));
        Assert.Equal([1000L, 20L, 3L, 10L], rows.Select(r => r.PromptTokens));
    }

    [Fact]
    public void Run_ByDayUntilADay_IncludesThatWholeUtcDay()
    {
        var rows = Run(until: "2026-11-02", by: "day");

        Assert.Equal(["2026-10-31", "2026-11-01", "2026-11-02"], rows.Select(r => r.Key));
    }

    [Fact]
    public void Run_UntilATime_ExcludesThatInstant()
    {
        var rows = Run(until: "2026-11-01T01:00:00Z", by: "tenant");

        Assert.Equal(1, Assert.Single(rows).Requests);
    }

    [Theory]
    [InlineData("yesterday", null, null, "since")]
    [InlineData(null, "2026-13-01", null, "until")]
    [InlineData(null, null, "worker", "by")]
    public void TryParse_BadArgument_NamesIt(string? since, string? until, string? by, string named)
    {
        Assert.False(UsageQuery.TryParse(since, until, by, out _, out var error));
        Assert.StartsWith(named + ":", error, StringComparison.Ordinal);
    }

    private UsageRow[] Run(string? since = null, string? until = null, string? by = null)
    {
        Assert.True(UsageQuery.TryParse(since, until, by, out var query, out var error), error);
        using var connection = _file.Open();
        return query.Run(connection);
    }

    public void Dispose() => _file.Dispose();
}
