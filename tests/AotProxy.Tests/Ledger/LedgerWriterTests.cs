using AotProxy.Ledger;
using AotProxy.Tests.Configuration;
using Microsoft.Extensions.Logging;

namespace AotProxy.Tests.Ledger;

public sealed class LedgerWriterTests : IDisposable
{
    private readonly LedgerFile _file = new();
    private readonly FakeTimeProvider _time = new();
    private readonly ListLogger _log = new();

    [Fact]
    public async Task TryRecord_AFullBatch_IsWrittenWithoutWaitingForTheInterval()
    {
        await using var writer = LedgerWriter.Open(_file.Model(batchSize: 3), _time, _log, out _);

        for (var i = 0; i < 3; i++)
        {
            Assert.True(writer.TryRecord(LedgerFile.Row(id: "r" + i)));
        }

        Assert.True(await TestConfig.WaitUntil(() => writer.Written == 3), $"written {writer.Written}");
        Assert.Equal(3, _file.Count());
        Assert.Equal(0, writer.Pending);
    }

    [Fact]
    public async Task TryRecord_LessThanABatch_WaitsForTheInterval()
    {
        await using var writer = LedgerWriter.Open(_file.Model(batchSize: 100, interval: TimeSpan.FromSeconds(1)), _time, _log, out _);

        writer.TryRecord(LedgerFile.Row(id: "a"));
        writer.TryRecord(LedgerFile.Row(id: "b"));

        // Manual time stands still: the interval cannot have passed.
        Assert.Equal(0, writer.Written);
        Assert.Equal(2, writer.Pending);
        Assert.True(
            await TestConfig.WaitUntil(() =>
            {
                _time.Advance(TimeSpan.FromSeconds(1));
                return writer.Written == 2;
            }),
            $"written {writer.Written}");
        Assert.Equal(2, _file.Count());
    }

    [Fact]
    public async Task TryRecord_QueueFull_CountsTheDropAndWarnsAtMostEvery10Seconds()
    {
        await using var writer = LedgerWriter.Open(_file.Model(batchSize: 10, queueCapacity: 2), _time, _log, out _);

        Assert.True(writer.TryRecord(LedgerFile.Row()));
        Assert.True(writer.TryRecord(LedgerFile.Row()));
        Assert.False(writer.TryRecord(LedgerFile.Row()));
        Assert.False(writer.TryRecord(LedgerFile.Row()));
        Assert.Equal(2, writer.Dropped);
        Assert.Single(_log.Entries, e => e.EventId == 801);

        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(writer.TryRecord(LedgerFile.Row()));

        Assert.Equal(3, writer.Dropped);
        Assert.Equal(2, _log.Entries.Count(e => e.EventId == 801 && e.Level == LogLevel.Warning));
    }

    [Fact]
    public async Task DisposeAsync_WritesWhatIsQueued()
    {
        var writer = LedgerWriter.Open(_file.Model(batchSize: 100), _time, _log, out _);
        for (var i = 0; i < 5; i++)
        {
            writer.TryRecord(LedgerFile.Row(id: "r" + i));
        }

        await writer.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(5, writer.Written);
        Assert.Equal(5, _file.Count());
    }

    [Fact]
    public async Task Open_ReturnsTheTotalsAlreadyInTheFile()
    {
        _file.Insert(LedgerFile.Row(tenant: "acme", prompt: 7, completion: 3));

        await using var writer = LedgerWriter.Open(_file.Model(), _time, _log, out var totals);

        var acme = Assert.Single(totals);
        Assert.Equal("acme", acme.Tenant);
        Assert.Equal(10, acme.LifetimeTokens);
    }

    [Fact]
    public async Task TryJournal_RequestThatEnds_LeavesOneRowAndNoJournal()
    {
        await using (var writer = LedgerWriter.Open(_file.Model(batchSize: 1), _time, _log, out _))
        {
            var journal = writer.NextJournal();
            Assert.True(writer.TryJournal(journal, LedgerFile.Interrupted("a")));
            Assert.True(await TestConfig.WaitUntil(() => _file.Count(table: "journal") == 1), "the journal entry written");

            Assert.True(writer.TryRecord(LedgerFile.Row(id: "a"), journal));
            Assert.True(await TestConfig.WaitUntil(() => writer.Written == 1), $"written {writer.Written}");
        }

        await using var reopened = LedgerWriter.Open(_file.Model(), _time, _log, out _);
        Assert.Equal(1, _file.Count());
        Assert.Equal(0, _file.Count($"outcome = '{LedgerOutcome.Interrupted}'"));
        Assert.DoesNotContain(_log.Entries, e => e.EventId == 804);
    }

    [Fact]
    public async Task Open_AfterAStopWithJournaledRequests_RecordsThemInterruptedAndCountsThemInTheTotals()
    {
        // A writer whose process stops with two admitted requests that never end.
        await using (var writer = LedgerWriter.Open(_file.Model(), _time, _log, out _))
        {
            Assert.True(writer.TryJournal(writer.NextJournal(), LedgerFile.Interrupted("a", prompt: 30)));
            Assert.True(writer.TryJournal(writer.NextJournal(), LedgerFile.Interrupted("b", prompt: 12)));
        }

        Assert.Equal(2, _file.Count(table: "journal"));
        await using var reopened = LedgerWriter.Open(_file.Model(), _time, _log, out var totals);

        Assert.Equal(42, Assert.Single(totals).LifetimeTokens);
        Assert.Equal(2, _file.Count($"outcome = '{LedgerOutcome.Interrupted}'"));
        Assert.Equal(0, _file.Count(table: "journal"));
        Assert.Single(_log.Entries, e => e.EventId == 804 && e.Level == LogLevel.Warning);
    }

    [Fact]
    public void Open_UnwritablePath_ThrowsNamingTheFile()
    {
        var model = _file.Model() with { Path = "/proc/aotproxy-no-such-dir/usage.db" };

        var error = Assert.Throws<LedgerUnavailableException>(() => LedgerWriter.Open(model, _time, _log, out _));

        Assert.Contains("/proc/aotproxy-no-such-dir/usage.db", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _file.Dispose();
}
