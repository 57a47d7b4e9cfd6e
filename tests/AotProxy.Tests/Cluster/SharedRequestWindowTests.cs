using AotProxy.Cluster;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// The fleet-wide RPM window against a real redis-server: two replicas, each with its own
// connection, share one tenant's minute; a request that never went upstream gives its place back.
public sealed class SharedRequestWindowTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private ConnectionMultiplexer _one = null!;
    private ConnectionMultiplexer _two = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _one = await Connect();
        _two = await Connect();
    }

    public async Task DisposeAsync()
    {
        await _one.DisposeAsync();
        await _two.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task TwoReplicas_TogetherTakeAtMostTheLimit()
    {
        const int Rpm = 10;
        var one = new SharedRequestWindow(() => _one);
        var two = new SharedRequestWindow(() => _two);

        // 3 x the limit at once, half through each replica: the 3 replicas took 90 of 90.
        var takes = await Task.WhenAll(Enumerable.Range(0, 3 * Rpm).Select(i => (i % 2 == 0 ? one : two).TryTakeAsync("acme", Rpm)));

        Assert.Equal(Rpm, takes.Count(t => t.Taken));
        Assert.All(takes.Where(t => !t.Taken), t => Assert.InRange(t.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(61)));
        Assert.False((await two.TryTakeAsync("acme", Rpm)).Taken);
        Assert.True((await two.TryTakeAsync("other", Rpm)).Taken); // a tenant's minute is its own
    }

    [Fact]
    public async Task AGiveBack_FreesOnePlace_ForTheOtherReplica()
    {
        const int Rpm = 3;
        var one = new SharedRequestWindow(() => _one);
        var two = new SharedRequestWindow(() => _two);
        var taken = new List<SharedTake>();
        for (var i = 0; i < Rpm; i++)
        {
            taken.Add(await one.TryTakeAsync("acme", Rpm));
        }

        Assert.All(taken, t => Assert.True(t.Taken));
        Assert.False((await two.TryTakeAsync("acme", Rpm)).Taken);

        one.GiveBack("acme", taken[0].Second);

        // Fire-and-forget on one's connection: wait until two sees the place free (bounded).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        SharedTake again;
        while (!(again = await two.TryTakeAsync("acme", Rpm)).Taken && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.True(again.Taken);
        Assert.False((await two.TryTakeAsync("acme", Rpm)).Taken); // exactly one place came back
    }

    [Fact]
    public async Task AGiveBack_OfASecondNoLongerCounted_ChangesNothing()
    {
        var one = new SharedRequestWindow(() => _one);
        Assert.True((await one.TryTakeAsync("acme", 1)).Taken);

        one.GiveBack("acme", 12345); // a bin long gone: nothing to subtract, no negative count
        var db = _one.GetDatabase();
        await db.PingAsync(); // same connection, in order: the give-back has run
        Assert.False(await db.HashExistsAsync("aotproxy:rpm:acme", 12345));
        Assert.False((await one.TryTakeAsync("acme", 1)).Taken);
    }

    // No answer is not an exception: the limit stage then decides with the replica's own window.
    // (A stopped store is seen as disconnected before the take is sent; a command that times out
    // on a blackholed port goes through the catch instead, which no test reaches yet.)
    [Fact]
    public async Task AStoreThatIsGone_AnswersStoreDown_AndAGiveBackIsDropped()
    {
        var one = new SharedRequestWindow(() => _one);
        var taken = await one.TryTakeAsync("acme", 1);
        Assert.True(taken.Taken);

        await _redis.StopAsync();
        Assert.Equal(SharedTakeOutcome.StoreDown, (await one.TryTakeAsync("acme", 1)).Outcome);
        one.GiveBack("acme", taken.Second); // nothing to reach: no exception either
        Assert.Equal(SharedTakeOutcome.StoreDown, (await new SharedRequestWindow(() => null).TryTakeAsync("acme", 1)).Outcome); // not connected yet
    }

    private async Task<ConnectionMultiplexer> Connect()
    {
        Assert.True(RedisAddress.TryParse(_redis.Url, out var address, out var error), error);
        return await ConnectionMultiplexer.ConnectAsync(address.Options());
    }
}
