using AotProxy.Cluster;
using AotProxy.Tests.Configuration;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// A dead replica's reservations (aotproxy:res:{replica}) against a real redis-server: the heartbeat
// of a live member that finds the dead one's name without a record subtracts each of its parts
// from the total it names, worker slots and tenant counters alike, once.
public sealed class ReplicaReaperTests : IAsyncLifetime
{
    private OneReplicaStore _store = null!;

    private IDatabase Db => _store.Db;

    public async Task InitializeAsync() => _store = await OneReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    // "ghost" died holding 2 of the worker's 3 running and 3 of the tenant's 5 in flight (no
    // record left, its name still listed); a live member's beat gives them back.
    [Fact]
    public async Task ALiveMembersHeartbeat_ReapsADeadReplicasWorkerSlotsAndTenantParts()
    {
        await Seed();
        await using var member = _store.StartMember("one", TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1));

        Assert.True(await TestConfig.WaitUntil(() => member.Current.StoreUp && member.Current.Members.Length == 1), member.Current.Error);
        Assert.True(await TestConfig.WaitUntil(async () => !await Db.KeyExistsAsync("aotproxy:res:ghost")), "ghost's reservations are reaped");
        await AssertReaped();
    }

    // Twice, or by two reapers: the second finds nothing left to subtract. A replica whose record
    // is still there is not reaped.
    [Fact]
    public async Task Reap_SubtractsOnce_AndNeverALiveReplica()
    {
        await Seed();
        await Db.HashSetAsync("aotproxy:member:live", "name", "live");
        await Db.HashSetAsync("aotproxy:res:live", "w|gpu-0|running", 1);

        Assert.Equal(-1, await ReplicaReaper.ReapAsync(Db, "live"));
        Assert.Equal(2, await ReplicaReaper.ReapAsync(Db, "ghost"));
        Assert.Equal(0, await ReplicaReaper.ReapAsync(Db, "ghost"));
        await AssertReaped();
        Assert.Equal(1, (long)await Db.HashGetAsync("aotproxy:res:live", "w|gpu-0|running"));
    }

    private async Task Seed()
    {
        await Db.SetAddAsync("aotproxy:members", "ghost");
        await Db.HashSetAsync("aotproxy:worker:gpu-0", "running", 3);
        await Db.HashSetAsync("aotproxy:tenant:acme|eu", "in_flight", 5);
        await Db.HashSetAsync("aotproxy:res:ghost", [new("w|gpu-0|running", 2), new("t|acme|eu|in_flight", 3)]);
    }

    private async Task AssertReaped()
    {
        Assert.Equal(1, (long)await Db.HashGetAsync("aotproxy:worker:gpu-0", "running"));
        Assert.Equal(2, (long)await Db.HashGetAsync("aotproxy:tenant:acme|eu", "in_flight"));
        Assert.False(await Db.KeyExistsAsync("aotproxy:res:ghost"));
        Assert.False(await Db.SetContainsAsync("aotproxy:members", "ghost"));
    }
}
