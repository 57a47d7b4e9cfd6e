using System.Net;
using System.Text;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Tests.Configuration;
using AotProxy.Gateway;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// A worker's max_concurrency over two replicas on one real redis-server: each plane is the data
// plane as GatewayHost wires it (DataPlaneHandler.Create with SharedWorkerSlots), with its own
// admission, worker state and connection, in front of one loopback worker that counts the
// requests it holds at once.
public sealed class SharedWorkerSlotsTests : IAsyncLifetime
{
    private const string Key = "sk-test-cluster";
    private const string Model = "m";
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(200);

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

    // Alone, each replica would send max_concurrency: 2 x 2 at once. Together they hold 2, and
    // one's release lets the request waiting on two in.
    [Fact]
    public async Task TwoReplicas_NeverHoldMoreThanMaxConcurrencyTogether_AndAReleaseOnOneLetsTheOthersWaiterIn()
    {
        const int Max = 2;
        await using var worker = new GatedWorker();
        var snapshot = Snapshot(worker.Url, Max);
        await using var one = Plane.Start(snapshot, _one, "one");
        await using var two = Plane.Start(snapshot, _two, "two");

        var first = Enumerable.Range(0, Max).Select(i => one.SendAsync($"one-{i}")).ToList();
        await worker.Server.WaitUntilAsync(w => w.Requests == Max, "one's requests reached the worker");
        var second = Enumerable.Range(0, Max).Select(i => two.SendAsync($"two-{i}")).ToList();

        // Both of two's requests hold a slot on two's worker and were refused by the store.
        Assert.True(await TestConfig.WaitUntil(() => two.Worker.SlotsTaken == Max && two.Worker.Shared is { Room: 0 }), $"two holds {two.Worker.SlotsTaken} slots, room {two.Worker.Shared?.Room}");
        Assert.Equal(Max, (long)await _one.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));

        worker.Finish(1); // one of one's requests ends: its release wakes one of two's
        await worker.Server.WaitUntilAsync(w => w.Requests == Max + 1, "a request of two's reached the worker");
        worker.Finish(2 * Max);
        Assert.All(await Task.WhenAll(first.Concat(second)), status => Assert.Equal(200, status));

        Assert.Equal(2 * Max, worker.Server.Requests);
        Assert.Equal(Max, worker.MostAtOnce);
        Assert.True(await RunningIsZeroAsync(), "every grant was given back");
        Assert.Empty(await _one.GetDatabase().HashGetAllAsync("aotproxy:res:one"));
        Assert.Empty(await _one.GetDatabase().HashGetAllAsync("aotproxy:res:two"));
    }

    // A store that does not answer: each replica sends at most its share, max_concurrency / N.
    [Fact]
    public async Task StoreDown_EachReplicaTakesItsShareOfTheWorker()
    {
        const int Max = 4;
        await using var worker = new GatedWorker();
        var snapshot = Snapshot(worker.Url, Max, maxQueueWait: "300ms");
        await using var one = Plane.Start(snapshot, _one, "one", members: 2);
        await _redis.StopAsync();
        Assert.True(await TestConfig.WaitUntil(() => !_one.IsConnected), "the client sees the store gone");

        var sent = Enumerable.Range(0, Max).Select(i => one.SendAsync($"down-{i}")).ToList();
        await worker.Server.WaitUntilAsync(w => w.Requests == Max / 2, "the share reached the worker");

        // The other half waits for the share and gives up after max_queue_wait, held at the
        // gateway (both before the share's requests end, which would let a waiter in).
        var pending = sent.ToList();
        for (var i = 0; i < Max / 2; i++)
        {
            var refused = await Task.WhenAny(pending);
            pending.Remove(refused);
            Assert.Equal(503, await refused);
        }

        worker.Finish(Max);
        var all = await Task.WhenAll(sent);
        Assert.Equal(Max / 2, all.Count(s => s == 200));
        Assert.Equal(Max / 2, all.Count(s => s == 503));
        Assert.Equal(Max / 2, worker.MostAtOnce);
    }

    // A drain shared by one replica reaches the other by its message; one written with no
    // message (as if the message were lost) by the other's next heartbeat; an undrain likewise.
    [Fact]
    public async Task ADrainSharedByOne_DrainsTheWorkerOnTheOther_AndAHeartbeatAppliesOneWhoseMessageWasLost()
    {
        await using var worker = new GatedWorker();
        var snapshot = Snapshot(worker.Url, 2);
        await using var one = Plane.Start(snapshot, _one, "one");
        await using var two = Plane.Start(snapshot, _two, "two");
        Assert.True(await TestConfig.WaitUntil(() => _two.GetSubscriber().IsConnected()), "two is connected");

        Assert.True(await one.Slots.ShareDrainAsync("w", drain: true));
        Assert.True(await TestConfig.WaitUntil(() => two.Worker.Draining), "two applies the drain");

        await _one.GetDatabase().HashSetAsync("aotproxy:worker:w", "drained", 0); // no message
        Assert.True(await TestConfig.WaitUntil(() => !two.Worker.Draining), "two's heartbeat applies the undrain");
    }

    // A release that comes between reading the count and waiting is not missed.
    [Fact]
    public async Task NextRelease_CompletesAtOnce_ForAReleaseSinceTheCountWasRead()
    {
        await using var slots = new SharedWorkerSlots(() => null, () => "one", () => 1, () => [], () => new CircuitBreakerModel(5, 2, TimeSpan.FromSeconds(30), 1, TimeSpan.FromSeconds(60)), Heartbeat, TimeProvider.System);
        var shared = new SharedWorker(slots, "w");
        var seen = shared.Releases;
        var pending = shared.NextRelease(seen);
        Assert.False(pending.IsCompleted);
        shared.Wake();
        await pending.WaitAsync(TimeSpan.FromSeconds(10));

        seen = shared.Releases;
        shared.Wake();
        Assert.True(shared.NextRelease(seen).IsCompleted);
    }

    // The releases are fire-and-forget: bounded, 10 s.
    private async Task<bool> RunningIsZeroAsync()
    {
        for (var i = 0; i < 100; i++)
        {
            if ((long)await _one.GetDatabase().HashGetAsync("aotproxy:worker:w", "running") == 0)
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }

    private static GatewaySnapshot Snapshot(string workerUrl, int maxConcurrency, string maxQueueWait = "30s")
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
            max_concurrency = {maxConcurrency}

            [[tenants]]
            name = "acme"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(Key)}"]
            """,
            "test.toml",
            1,
            TimeProvider.System);
        Assert.True(loaded.IsValid, loaded.ToString());
        return loaded.Snapshot;
    }

    private async Task<ConnectionMultiplexer> Connect()
    {
        Assert.True(RedisAddress.TryParse(_redis.Url, out var address, out var error), error);
        return await ConnectionMultiplexer.ConnectAsync(address.Options());
    }

    // A worker that holds each request until the test lets it finish, counting how many it held at once.
    private sealed class GatedWorker : IAsyncDisposable
    {
        private readonly SemaphoreSlim _gate = new(0);
        private int _atOnce;
        private int _most;

        public GatedWorker()
        {
            var json = Fixtures.Text("openai/chat_nonstream.json");
            Server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
            {
                var now = Interlocked.Increment(ref _atOnce);
                InterlockedMax(ref _most, now);
                try
                {
                    await _gate.WaitAsync(ct);
                }
                finally
                {
                    Interlocked.Decrement(ref _atOnce);
                }

                await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
                return true;
            });
        }

        public LoopbackTcpServer Server { get; }

        public string Url => Server.Url("/").ToString();

        public int MostAtOnce => Volatile.Read(ref _most);

        public void Finish(int requests) => _gate.Release(requests);

        public async ValueTask DisposeAsync()
        {
            _gate.Release(1000);
            await Server.DisposeAsync();
        }

        private static void InterlockedMax(ref int target, int value)
        {
            var seen = Volatile.Read(ref target);
            while (value > seen)
            {
                var found = Interlocked.CompareExchange(ref target, value, seen);
                if (found == seen)
                {
                    return;
                }

                seen = found;
            }
        }
    }

    // One replica's data plane, as GatewayHost wires it with [cluster] redis_url set.
    private sealed class Plane(DataPlaneHandler handler, GatewayState state, SharedWorkerSlots slots) : IAsyncDisposable
    {
        public WorkerState Worker => state.Current.Workers.Workers[0];

        public SharedWorkerSlots Slots => slots;

        public static Plane Start(GatewaySnapshot snapshot, IConnectionMultiplexer redis, string replica, int members = 2)
        {
            var time = TimeProvider.System;
            var limits = new TenantLimits(time);
            var telemetry = new GatewayTelemetry();
            var router = new Router(time, Random.Shared, NullLogger.Instance);
            var capacity = new CapacitySignal(time);
            var admissions = new AdmissionController(new WaiterPool(time, capacity: 16), telemetry.Admission, time, router, capacity);
            var state = new GatewayState(snapshot, new WorkerRegistry(time, capacity), limits, admissions, new HeapCompaction(time, NullLogger.Instance), NullLogger.Instance);
            var slots = new SharedWorkerSlots(() => redis, () => replica, () => members, () => state.Current.Workers.Workers, () => snapshot.CircuitBreaker, Heartbeat, time, capacity);
            slots.Start();
            var handler = DataPlaneHandler.Create(state, admissions, router, limits, new UsageRecorder(telemetry.Usage, time), telemetry, null, time, NullLogger.Instance, new SharedTenantLimits(() => redis, () => replica), sharedSlots: slots);
            return new Plane(handler, state, slots);
        }

        public async Task<int> SendAsync(string requestId)
        {
            var context = new DefaultHttpContext();
            context.Request.Method = "POST";
            context.Request.Path = "/v1/chat/completions";
            context.Request.Headers.Authorization = "Bearer " + Key;
            context.Request.Headers["x-request-id"] = requestId;
            var body = Encoding.UTF8.GetBytes($$"""{"model":"{{Model}}","messages":[{"role":"user","content":"Hello"}],"max_tokens":8}""");
            context.Request.Body = new MemoryStream(body);
            context.Request.ContentLength = body.Length;
            context.Response.Body = new MemoryStream();
            context.Connection.RemoteIpAddress = IPAddress.Loopback;
            await handler.HandleAsync(context);
            return context.Response.StatusCode;
        }

        public async ValueTask DisposeAsync()
        {
            await slots.DisposeAsync();
            foreach (var worker in state.Current.Workers.Workers)
            {
                await worker.Connections.CloseAsync();
            }
        }
    }
}
