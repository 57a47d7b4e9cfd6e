using System.Text;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Identity;
using AotProxy.Tests.Configuration;
using AotProxy.Tests.Support;
using Microsoft.AspNetCore.Http;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// [cluster] store_down and the resync after it, on the data plane as GatewayHost wires it
// (DataPlaneHandler.Create with SharedTenantLimits and its StoreDownPolicy) and a real
// redis-server. "Down" is the replica's connection withheld (what SharedTenantLimits sees while
// the multiplexer reconnects), so that the store itself can be inspected meanwhile.
public sealed class StoreDownDataPlaneTests : IAsyncLifetime
{
    private const string LimitedKey = "sk-test-store-down";
    private const string OpenKey = "sk-test-store-down-open";
    private const string Model = ClusterPlane.Model;

    private OneReplicaStore _store = null!;

    private ConnectionMultiplexer Connection => _store.Connection;

    public async Task InitializeAsync() => _store = await OneReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Theory]
    [InlineData(9, 3, 3)]
    [InlineData(10, 3, 3)]  // floor: 3 x 3 <= 10
    [InlineData(2, 3, 1)]   // never below one request
    [InlineData(5, 0, 5)]   // no member known yet: this replica alone
    [InlineData(5, 1, 5)]
    public void Share_IsTheFloorOfLimitOverMembers_AtLeastOne(long limit, int members, long share)
    {
        Assert.Equal(share, LocalShare.Of(limit, members));
        Assert.True(members == 0 || limit < members || LocalShare.Of(limit, members) * members <= limit);
    }

    // Before store_down was enforced, a replica decided alone with its own full limit: 9 of 9.
    [Fact]
    public async Task Local_AReplicaOfThreeServesItsShare_ThenRefusesWith429_AndCountsBoth()
    {
        const int Rpm = 9;
        await using var worker = Worker();
        await using var plane = ClusterPlane.Start(Snapshot(worker, Rpm, StoreDownModes.Local), () => null, "replica-a", members: 3);

        var statuses = new List<int>();
        for (var i = 0; i < Rpm; i++)
        {
            statuses.Add((await plane.SendAsync(LimitedKey, $"r{i}")).Status);
        }

        var share = (int)LocalShare.Of(Rpm, 3);
        Assert.Equal(Enumerable.Repeat(200, share).Concat(Enumerable.Repeat(429, Rpm - share)), statuses);
        Assert.Equal(share, worker.Requests);
        var metrics = await plane.MetricsAsync();
        Assert.Contains($"llm_gateway_cluster_store_down_decisions_total{{mode=\"local\",outcome=\"admitted\"}} {share}", metrics, StringComparison.Ordinal);
        Assert.Contains($"llm_gateway_cluster_store_down_decisions_total{{mode=\"local\",outcome=\"refused\"}} {Rpm - share}", metrics, StringComparison.Ordinal);
        Assert.Contains("llm_gateway_cluster_store_up 0", metrics, StringComparison.Ordinal);
    }

    // Every shared limit goes through store_down, not only RPM: with max_in_flight = 6 and 3
    // members, a replica holds at most its share, 2, in flight while the store does not answer
    // (before, it held its own full 6: the fleet up to 18). Sequential, so each decision sees the
    // ones before it.
    [Fact]
    public async Task Local_AReplicaOfThreeHoldsItsShareOfMaxInFlight_ThenRefusesWith429()
    {
        const int MaxInFlight = 6;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var arrived = new SemaphoreSlim(0);
        await using var worker = HeldWorker(gate, arrived);
        await using var plane = ClusterPlane.Start(Snapshot(worker, 1000, StoreDownModes.Local, budget: $"max_in_flight = {MaxInFlight}"), () => null, "replica-a", members: 3);

        var share = (int)LocalShare.Of(MaxInFlight, 3);
        var held = new List<Task<(int Status, string? RetryAfter, string Body)>>();
        for (var i = 0; i < share; i++)
        {
            held.Add(plane.SendAsync(LimitedKey, $"held{i}"));
            Assert.True(await arrived.WaitAsync(TimeSpan.FromSeconds(10)), "the request reached the worker");
        }

        var refused = await plane.SendAsync(LimitedKey, "over");
        Assert.Equal(429, refused.Status);
        Assert.Contains("max_in_flight", refused.Body, StringComparison.Ordinal);
        Assert.Equal(share, worker.Requests);

        gate.SetResult();
        Assert.All(await Task.WhenAll(held), r => Assert.Equal(200, r.Status));
        Assert.Equal(0, plane.Limits.Of("acme")!.InFlight);
        Assert.Equal(200, (await plane.SendAsync(LimitedKey, "after")).Status); // the places came back
    }

    [Fact]
    public async Task Closed_ALimitedTenantGets503WithRetryAfter_AnUnlimitedOneIsServed()
    {
        await using var worker = Worker();
        await using var plane = ClusterPlane.Start(Snapshot(worker, 100, StoreDownModes.Closed, heartbeat: "1500ms"), () => null, "replica-a", members: 3);

        var refused = await plane.SendAsync(LimitedKey, "limited");
        Assert.Equal(503, refused.Status);
        Assert.Equal("2", refused.RetryAfter); // the heartbeat, rounded up
        Assert.Contains("\"code\":\"limit_store_unavailable\"", refused.Body, StringComparison.Ordinal);
        Assert.Contains("limit store is unavailable", refused.Body, StringComparison.Ordinal);
        Assert.Equal(0, plane.Limits.Of("acme")!.InFlight); // what the local checks took went back

        Assert.Equal(200, (await plane.SendAsync(OpenKey, "open")).Status);
        Assert.Equal(1, worker.Requests);
        Assert.Contains("llm_gateway_cluster_store_down_decisions_total{mode=\"closed\",outcome=\"refused\"} 1", await plane.MetricsAsync(), StringComparison.Ordinal);
    }

    // What a replica admitted alone is charged into the shared window once when the store
    // answers, however often the resync runs: the other replicas then find the minute as full
    // as it really is.
    [Fact]
    public async Task Back_WhatWasAdmittedAloneIsChargedOnce_AndTheFleetSeesIt()
    {
        const int Rpm = 9;
        await using var worker = Worker();
        var up = true;
        await using var plane = ClusterPlane.Start(Snapshot(worker, Rpm, StoreDownModes.Local), () => up ? Connection : null, "replica-a", members: 3);
        var db = Connection.GetDatabase();
        await plane.Resync.RunAsync(db); // the epoch, before the outage
        Assert.NotNull(plane.Resync.Epoch);

        up = false;
        var alone = 0;
        for (var i = 0; i < Rpm; i++)
        {
            alone += (await plane.SendAsync(LimitedKey, $"down{i}")).Status == 200 ? 1 : 0;
        }

        Assert.Equal(LocalShare.Of(Rpm, 3), alone);
        Assert.Equal(0, await SharedCountAsync(db, "acme")); // nothing reached the store meanwhile

        up = true;
        await plane.Resync.RunAsync(db);
        await plane.Resync.RunAsync(db);
        Assert.Equal(alone, await SharedCountAsync(db, "acme"));

        // Another replica's shared takes: only the rest of the minute.
        var other = new SharedTenantLimits(() => Connection, () => "replica-b");
        var taken = 0;
        for (var i = 0; i < Rpm; i++)
        {
            taken += (await other.TryAdmitAsync(new SharedDemand("acme", Rpm, 0, 0, 0, null, 0, 0, 0))).Taken ? 1 : 0;
        }

        Assert.Equal(Rpm - alone, taken);
        Assert.Contains($"llm_gateway_cluster_recharged_requests_total{{reason=\"down\"}} {alone}", await plane.MetricsAsync(), StringComparison.Ordinal);
    }

    // Redis restarted empty: each replica seeds what it knows once per epoch (its RPM of the last
    // 60 s, its budgets' spend), so neither the minute nor a budget starts over.
    [Fact]
    public async Task RestartedEmpty_AReplicaSeedsItsLastMinuteAndItsSpend_OncePerEpoch()
    {
        const int Rpm = 9;
        await using var worker = Worker();
        await using var plane = ClusterPlane.Start(Snapshot(worker, Rpm, StoreDownModes.Local, budget: "budget_tokens = 1000000"), () => Connection, "replica-a", members: 3);
        var db = Connection.GetDatabase();
        await plane.Resync.RunAsync(db);
        var before = plane.Resync.Epoch;
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(200, (await plane.SendAsync(LimitedKey, $"r{i}")).Status);
        }

        Assert.Equal(4, await SharedCountAsync(db, "acme"));
        await RestartEmptyAsync();
        Assert.Equal(0, await SharedCountAsync(db, "acme"));

        await plane.Resync.RunAsync(db);
        await plane.Resync.RunAsync(db);
        Assert.NotEqual(before, plane.Resync.Epoch);
        Assert.Equal(4, await SharedCountAsync(db, "acme"));
        var spent = plane.Limits.Of("acme")!.Budget!.SpentTokens;
        Assert.True(spent > 0);
        Assert.Equal(spent, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_spent"));
        Assert.True(await db.SetContainsAsync($"aotproxy:seeded:{plane.Resync.Epoch}", "replica-a"));

        // The fleet's minute is as full as it was: 5 more, then refused. A request the replica
        // decided alone (the client's connection to the restarted store still settling: seen once
        // on a loaded CI machine) is store_down's, not the fleet's: it is sent again, at most 5 times.
        var statuses = new List<int>();
        var alone = 0;
        for (var i = 0; statuses.Count < Rpm - 4 + 1 && alone <= 5; i++)
        {
            var decidedAlone = await StoreDownDecisionsAsync(plane);
            var status = (await plane.SendAsync(LimitedKey, $"after{i}")).Status;
            if (await StoreDownDecisionsAsync(plane) > decidedAlone)
            {
                alone++;
                continue;
            }

            statuses.Add(status);
        }

        Assert.Equal(Enumerable.Repeat(200, Rpm - 4).Append(429), statuses);
    }

    // Redis restarted empty after replica B used up acme's budget: B's seed puts its spend into
    // the fields the admit script checks, so replica A, whose own books show nothing spent, is
    // refused by the fleet's budget. Seen failing while the seed wrote other fields than the ones
    // the admit script read: A was served.
    [Theory]
    [InlineData("budget_tokens")]
    [InlineData("monthly_budget_tokens")]
    public async Task RestartedEmpty_ABudgetUsedUpByAnotherReplica_StaysUsedUp(string budget)
    {
        await using var worker = Worker();
        var snapshot = Snapshot(worker, 1000, StoreDownModes.Local, budget: $"{budget} = 60");
        await using var a = ClusterPlane.Start(snapshot, () => Connection, "replica-a", members: 2);
        await using var b = ClusterPlane.Start(snapshot, () => Connection, "replica-b", members: 2);
        var db = Connection.GetDatabase();
        await a.Resync.RunAsync(db);
        await b.Resync.RunAsync(db);

        var served = 0;
        for (var i = 0; i < 20 && (await b.SendAsync(LimitedKey, $"b{i}")).Status == 200; i++)
        {
            served++;
        }

        Assert.True(served > 0);
        Assert.Equal(0, a.Limits.Of("acme")!.Budget!.SpentTokens); // A's own books: nothing spent
        Assert.Equal(429, (await a.SendAsync(LimitedKey, "a-before")).Status); // the fleet's budget is used up

        await RestartEmptyAsync();
        Assert.False(await db.KeyExistsAsync("aotproxy:tenant:acme"));
        await a.Resync.RunAsync(db);
        await b.Resync.RunAsync(db);

        var refused = await a.SendAsync(LimitedKey, "a-after");
        Assert.Equal(429, refused.Status);
        Assert.Contains("insufficient_quota", refused.Body, StringComparison.Ordinal);
        Assert.Equal(served, worker.Requests);
    }

    // Replica A fills the fleet's minute (requests, or tokens) through the store; then the store
    // stops answering replica B, whose own window is empty. B's share is of what the others did
    // not hold at its last read: none of the requests, less than one request of the tokens, so B
    // refuses. Seen failing before (the share was of the whole limit): B served its
    // floor(limit / 2) on top of A's full minute.
    [Theory]
    [InlineData(6, "")]
    [InlineData(1000, "tpm = 500")] // each request reserves ~20 tokens and settles to 112
    public async Task Down_AMinuteTheOthersFilled_LeavesThisReplicaNoShare(int rpm, string tpm)
    {
        await using var worker = Worker();
        var up = true;
        var snapshot = Snapshot(worker, rpm, StoreDownModes.Local, budget: tpm);
        await using var a = ClusterPlane.Start(snapshot, () => Connection, "replica-a", members: 2);
        await using var b = ClusterPlane.Start(snapshot, () => up ? Connection : null, "replica-b", members: 2);
        var db = Connection.GetDatabase();
        await a.Resync.RunAsync(db);
        var served = 0;
        for (var i = 0; i < 100 && (await a.SendAsync(LimitedKey, $"a{i}")).Status == 200; i++)
        {
            served++;
        }

        Assert.True(served > 1, $"{served}");
        await a.Shared.FlushAsync(); // A's settlements above their estimates, batched in its lease
        await b.Resync.RunAsync(db); // B's read of the fleet's minute
        up = false;
        var refused = await b.SendAsync(LimitedKey, "b-down");
        Assert.Equal(429, refused.Status);
        Assert.Equal(served, worker.Requests);
        Assert.Contains("llm_gateway_cluster_store_down_decisions_total{mode=\"local\",outcome=\"refused\"} 1", await b.MetricsAsync(), StringComparison.Ordinal);
    }

    // Redis restarted empty while two requests run on replica A (max_in_flight = 2, a budget, the
    // worker's slots shared): A's resync puts back what it holds, each with its part in
    // aotproxy:res:replica-a, so replica B is refused by max_in_flight while they run, and their
    // settlements bring every total back to 0. Seen failing before: in_flight, budget_reserved
    // and the worker's running started at 0 after the restart.
    [Fact]
    public async Task RestartedEmpty_RequestsInFlightAreHeldAgain_AndTheirSettlementsGiveThemBack()
    {
        const int MaxInFlight = 2;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var arrived = new SemaphoreSlim(0);
        await using var worker = HeldWorker(gate, arrived);
        var snapshot = Snapshot(worker, 1000, StoreDownModes.Local, budget: $"max_in_flight = {MaxInFlight}\nbudget_tokens = 1000000");
        await using var a = ClusterPlane.Start(snapshot, () => Connection, "replica-a", members: 2, sharedSlots: true);
        await using var b = ClusterPlane.Start(snapshot, () => Connection, "replica-b", members: 2);
        var db = Connection.GetDatabase();
        await a.Resync.RunAsync(db);
        await b.Resync.RunAsync(db);

        var held = new List<Task<(int Status, string? RetryAfter, string Body)>>();
        for (var i = 0; i < MaxInFlight; i++)
        {
            held.Add(a.SendAsync(LimitedKey, $"held{i}"));
            Assert.True(await arrived.WaitAsync(TimeSpan.FromSeconds(10)), "the request reached the worker");
        }

        var reserved = (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved");
        Assert.True(reserved > 0);
        await RestartEmptyAsync();
        Assert.False(await db.KeyExistsAsync("aotproxy:tenant:acme"));

        await a.Resync.RunAsync(db);
        await b.Resync.RunAsync(db);
        Assert.Equal(MaxInFlight, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        Assert.Equal(reserved, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.Equal(MaxInFlight, (long)await db.HashGetAsync("aotproxy:worker:w", "running"));
        Assert.Equal(MaxInFlight, (long)await db.HashGetAsync("aotproxy:res:replica-a", "t|acme|in_flight"));
        Assert.Equal(MaxInFlight, (long)await db.HashGetAsync("aotproxy:res:replica-a", "w|w|running"));
        await a.Resync.RunAsync(db); // idempotent
        Assert.Equal(MaxInFlight, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));

        var refused = await b.SendAsync(LimitedKey, "b-over");
        Assert.Equal(429, refused.Status);
        Assert.Contains("max_in_flight", refused.Body, StringComparison.Ordinal);

        gate.SetResult();
        Assert.All(await Task.WhenAll(held), r => Assert.Equal(200, r.Status));
        // Fire-and-forget settlements have no answer to wait on: the store's totals are.
        Assert.True(await TestConfig.WaitUntil(async () => (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight") == 0 && (long)await db.HashGetAsync("aotproxy:worker:w", "running") == 0), "the settlements reached the store");
        Assert.Equal(0, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.Empty(await db.HashGetAllAsync("aotproxy:res:replica-a"));
        Assert.Equal(200, (await b.SendAsync(LimitedKey, "b-after")).Status);
    }

    // A settlement the store could not be sent (the connection down when the request ended): its
    // place in flight and its budget reservation are given back by the resync once the store
    // answers (same data), and what it spent is charged once. Seen failing before: in_flight
    // stayed 1 and the spend was never charged.
    [Fact]
    public async Task Back_ASettlementDroppedWhileDown_IsReconciled_AndItsSpendChargedOnce()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var arrived = new SemaphoreSlim(0);
        await using var worker = HeldWorker(gate, arrived);
        var up = true;
        await using var plane = ClusterPlane.Start(Snapshot(worker, 1000, StoreDownModes.Local, budget: "max_in_flight = 4\nbudget_tokens = 1000000"), () => up ? Connection : null, "replica-a", members: 1);
        var db = Connection.GetDatabase();
        await plane.Resync.RunAsync(db);

        var running = plane.SendAsync(LimitedKey, "shared");
        Assert.True(await arrived.WaitAsync(TimeSpan.FromSeconds(10)), "the request reached the worker");
        Assert.Equal(1, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));

        up = false; // the store does not answer when the request ends
        gate.SetResult();
        Assert.Equal(200, (await running).Status);
        var spent = plane.Limits.Of("acme")!.Budget!.SpentTokens;
        Assert.True(spent > 0);
        Assert.Equal(1, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight")); // not settled

        up = true;
        await plane.Resync.RunAsync(db);
        await plane.Resync.RunAsync(db);
        Assert.Equal(0, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        Assert.Equal(0, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.Equal(spent, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_spent"));
        Assert.Empty(await db.HashGetAllAsync("aotproxy:res:replica-a"));
    }

    private static LoopbackTcpServer HeldWorker(TaskCompletionSource gate, SemaphoreSlim arrived)
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        return LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            arrived.Release();
            await gate.Task.WaitAsync(ct);
            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
            return true;
        });
    }

    // The store stopped and started again empty, and the tests' connection back to it.
    private async Task RestartEmptyAsync()
    {
        await _store.Server.StopAsync();
        await _store.Server.RestartAsync();
        Assert.True(await TestConfig.WaitUntil(TryPingAsync), "the connection to the restarted store came back");
    }

    private async Task<bool> TryPingAsync()
    {
        try
        {
            await Connection.GetDatabase().PingAsync();
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return false;
        }
    }

    // How many requests this replica decided alone (store_down "local"), admitted or refused.
    private static async Task<double> StoreDownDecisionsAsync(ClusterPlane plane) =>
        (await plane.MetricsAsync()).Split('\n')
            .Where(line => line.StartsWith("llm_gateway_cluster_store_down_decisions_total{", StringComparison.Ordinal))
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    private static async Task<long> SharedCountAsync(IDatabase db, string tenant) =>
        (await db.HashGetAllAsync($"aotproxy:rpm:{tenant}")).Sum(e => (long)e.Value);

    private static LoopbackTcpServer Worker()
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        return LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
            return true;
        });
    }

    private static GatewaySnapshot Snapshot(LoopbackTcpServer worker, int rpm, string storeDown, string heartbeat = "1s", string budget = "")
    {
        var loaded = ConfigLoader.Parse(
            $"""
            [cluster]
            redis_url = "redis://127.0.0.1:1"
            replica = "replica-a"
            heartbeat = "{heartbeat}"
            store_down = "{storeDown}"

            [[workers]]
            name = "w"
            url = "{worker.Url("/")}"
            models = ["{Model}"]
            max_concurrency = 4

            [[tenants]]
            name = "acme"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(LimitedKey)}"]
            rpm = {rpm}
            {budget}

            [[tenants]]
            name = "open"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(OpenKey)}"]
            """,
            "test.toml",
            1,
            TimeProvider.System);
        Assert.True(loaded.IsValid, loaded.ToString());
        return loaded.Snapshot;
    }
}
