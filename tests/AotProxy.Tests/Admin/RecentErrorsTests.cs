using AotProxy.Ledger;

namespace AotProxy.Tests.Admin;

public class RecentErrorsTests
{
    [Fact]
    public void Snapshot_KeepsTheLastCapacityErrorsOldestFirst_AndCountsThemAll()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        var errors = new RecentErrors(time, capacity: 3);
        Assert.Empty(errors.Snapshot());

        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            errors.Add(500 + i, "code" + i, "t", "m", "w", "message " + i);
        }

        var kept = errors.Snapshot();
        Assert.Equal(5, errors.Count);
        Assert.Equal(["code2", "code3", "code4"], kept.Select(e => e.Code));
        Assert.Equal(504, kept[^1].Status);
        Assert.Equal(time.GetUtcNow(), kept[^1].At);
    }

    [Fact]
    public async Task Add_FromManyThreads_CountsEveryError_AndKeepsAtMostCapacity()
    {
        var errors = new RecentErrors(TimeProvider.System, capacity: 8);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 1000; i++)
            {
                errors.Add(429, "rate_limited", "t" + t, "m", "", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        })));

        Assert.Equal(4000, errors.Count);
        var kept = errors.Snapshot();
        Assert.Equal(8, kept.Length);
        Assert.All(kept, e => Assert.Equal(429, e.Status));
    }
}
