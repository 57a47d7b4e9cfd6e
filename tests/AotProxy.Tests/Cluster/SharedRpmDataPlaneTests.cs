using System.Text;
using AotProxy.Configuration;
using AotProxy.Identity;
using AotProxy.Tests.Configuration;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Cluster;

// The limit stage of two replicas on one real redis-server: each plane is the data plane as
// GatewayHost wires it (DataPlaneHandler.Create with SharedTenantLimits), with its own tenant
// limits and its own connection, in front of one loopback worker.
public sealed class SharedRpmDataPlaneTests : IAsyncLifetime
{
    private const string Key = "sk-test-cluster";
    private const string Model = ClusterPlane.Model;

    private TwoReplicaStore _store = null!;

    public async Task InitializeAsync() => _store = await TwoReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    // Alone, each replica would let rpm through: 2 x rpm of the 3 x rpm. Together they serve rpm.
    [Fact]
    public async Task TwoReplicas_TogetherServeAtMostTheTenantsRpm()
    {
        const int Rpm = 5;
        await using var worker = Worker(release: null);
        var snapshot = Snapshot(worker.Url("/").ToString(), $"rpm = {Rpm}", maxQueueWait: "30s");
        await using var one = ClusterPlane.Start(snapshot, () => _store.One, "one", members: 2);
        await using var two = ClusterPlane.Start(snapshot, () => _store.Two, "two", members: 2);

        var statuses = new List<int>();
        for (var i = 0; i < 3 * Rpm; i++)
        {
            statuses.Add(await (i % 2 == 0 ? one : two).StatusAsync(Key, $"r{i}"));
        }

        Assert.True(statuses.All(s => s is 200 or 429), string.Join(",", statuses));
        Assert.Equal(Rpm, statuses.Count(s => s == 200));
        Assert.Equal(2 * Rpm, statuses.Count(s => s == 429));
        Assert.Equal(Rpm, worker.Requests);
        Assert.Equal(0, one.Limits.Of("acme")!.InFlight);
        Assert.Equal(0, two.Limits.Of("acme")!.InFlight);
    }

    // A request that waited for a worker slot and gave up never went upstream: its place in the
    // fleet's minute goes back, and another request gets it.
    [Fact]
    public async Task ARequestThatNeverWentUpstream_GivesItsSharedPlaceBack()
    {
        const int Rpm = 2;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var worker = Worker(release);
        var snapshot = Snapshot(worker.Url("/").ToString(), $"rpm = {Rpm}", maxQueueWait: "200ms");
        await using var one = ClusterPlane.Start(snapshot, () => _store.One, "one", members: 2);
        await using var two = ClusterPlane.Start(snapshot, () => _store.Two, "two", members: 2);

        var held = one.StatusAsync(Key, "held"); // takes the worker's one slot and the first place
        await worker.WaitUntilAsync(w => w.Requests == 1, "the first request reached the worker");
        Assert.Equal(503, await one.StatusAsync(Key, "queued")); // took the second place, then gave up waiting
        release.SetResult();
        Assert.Equal(200, await held);

        // one's give-back goes to its lease while its second lasts, then to the bin at a flush.
        var db = _store.One.GetDatabase();
        Assert.True(await TestConfig.WaitUntil(async () => (await db.HashValuesAsync("aotproxy:rpm:acme")).Sum(b => (long)b) == 1), "the place is back in the store");
        Assert.Equal(200, await one.StatusAsync(Key, "after"));
        Assert.Equal(429, await two.StatusAsync(Key, "over"));
        Assert.Equal(2, worker.Requests);
    }

    // The tenant's one place in flight is held through replica one: replica two, whose own count
    // is 0, answers the 429 of max_in_flight across the cluster; once the request ends (its
    // lease gives the place back at a flush), two serves.
    [Fact]
    public async Task TwoReplicas_TogetherHoldMaxInFlight_AndTheRefusalSaysAcrossTheCluster()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var worker = Worker(release);
        var snapshot = Snapshot(worker.Url("/").ToString(), "max_in_flight = 1", maxQueueWait: "30s");
        await using var one = ClusterPlane.Start(snapshot, () => _store.One, "one", members: 2);
        await using var two = ClusterPlane.Start(snapshot, () => _store.Two, "two", members: 2);

        var held = one.StatusAsync(Key, "held");
        await worker.WaitUntilAsync(w => w.Requests == 1, "the first request reached the worker");
        var context = await two.SendForContextAsync(Key, "over").WaitAsync(TimeSpan.FromSeconds(10)); // admitted, it would wait on the worker
        Assert.Equal(429, context.Response.StatusCode);
        Assert.Equal("1", context.Response.Headers.RetryAfter.ToString());
        context.Response.Body.Position = 0;
        var body = await new StreamReader(context.Response.Body).ReadToEndAsync();
        Assert.Contains("(max_in_flight) across the cluster: Limit 1", body, StringComparison.Ordinal);
        Assert.Equal(0, two.Limits.Of("acme")!.InFlight);

        release.SetResult();
        Assert.Equal(200, await held);
        // one's lease keeps its place spare until a flush finds it idle, then gives it back.
        var db = _store.One.GetDatabase();
        Assert.True(await TestConfig.WaitUntil(async () => (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight") == 0), "one gave its place back");
        Assert.Equal(200, await two.StatusAsync(Key, "after"));
        Assert.Equal(2, worker.Requests);
    }

    private static LoopbackTcpServer Worker(TaskCompletionSource? release)
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        return LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            if (release is not null)
            {
                await release.Task.WaitAsync(ct);
            }

            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
            return true;
        });
    }

    private static GatewaySnapshot Snapshot(string workerUrl, string limits, string maxQueueWait)
    {
        var loaded = ConfigLoader.Parse(
            $"""
            [[classes]]
            name = "default"
            max_queue_wait = "{maxQueueWait}"

            [[workers]]
            name = "w"
            url = "{workerUrl}"
            models = ["{Model}"]
            max_concurrency = 1

            [[tenants]]
            name = "acme"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(Key)}"]
            {limits}
            """,
            "test.toml",
            1,
            TimeProvider.System);
        Assert.True(loaded.IsValid, loaded.ToString());
        return loaded.Snapshot;
    }
}
