using System.Text;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Http;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// One replica's data plane as GatewayHost wires it with [cluster] redis_url set, on the given
// connection (null: the store does not answer): the tenant limits shared (SharedTenantLimits
// with its StoreDownPolicy and StoreResync) and, with sharedSlots, each worker's slots
// (SharedWorkerSlots, beating every 200 ms); the leases' returns flushed every 100 ms. No membership heartbeat runs: members is what the
// replica's last good heartbeat would have seen.
internal sealed class ClusterPlane : IAsyncDisposable
{
    public const string Model = "m";

    private static readonly TimeSpan SlotsHeartbeat = TimeSpan.FromMilliseconds(200);

    private readonly DataPlaneHandler _handler;
    private readonly GatewayState _state;
    private readonly GatewayTelemetry _telemetry;

    private ClusterPlane(DataPlaneHandler handler, GatewayState state, TenantLimits limits, GatewayTelemetry telemetry, StoreResync resync, SharedTenantLimits shared, SharedWorkerSlots? slots)
    {
        Shared = shared;
        _handler = handler;
        _state = state;
        _telemetry = telemetry;
        Limits = limits;
        Resync = resync;
        Slots = slots;
    }

    public TenantLimits Limits { get; }

    public StoreResync Resync { get; }

    // The tenants' fleet-wide limits, flushing their leases' returns as GatewayHost's do.
    public SharedTenantLimits Shared { get; }

    public SharedWorkerSlots? Slots { get; }

    public WorkerState Worker => _state.Current.Workers.Workers[0];

    public static ClusterPlane Start(GatewaySnapshot snapshot, Func<IConnectionMultiplexer?> redis, string replica, int members, bool sharedSlots = false)
    {
        var time = TimeProvider.System;
        var limits = new TenantLimits(time);
        var telemetry = new GatewayTelemetry();
        var router = new Router(time, Random.Shared, NullLogger.Instance);
        var capacity = new CapacitySignal(time);
        var admissions = new AdmissionController(new WaiterPool(time, capacity: 16), telemetry.Admission, time, router, capacity);
        var state = new GatewayState(snapshot, new WorkerRegistry(time, capacity), limits, admissions, new AotProxy.Caching.ResponseCache(time), new HeapCompaction(time, NullLogger.Instance), NullLogger.Instance);
        var member = new ClusterMember(replica, "i", "v", "d", 1, 0, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, TimeSpan.Zero, TimeSpan.Zero);
        var view = ClusterView.Starting with { Members = [.. Enumerable.Repeat(member, members)] };
        var clusterTelemetry = new ClusterTelemetry(telemetry.Registry, () => view);
        var policy = new StoreDownPolicy(snapshot.Cluster, () => view, clusterTelemetry, time, NullLogger.Instance);
        var resync = new StoreResync(() => replica, limits, policy, clusterTelemetry, NullLogger.Instance);
        SharedWorkerSlots? slots = null;
        if (sharedSlots)
        {
            slots = new SharedWorkerSlots(redis, () => replica, () => members, () => state.Current.Workers.Workers, () => snapshot.CircuitBreaker, SlotsHeartbeat, time, capacity);
            policy.Held.Workers = () => slots.Workers;
            slots.Victims = admissions;
            slots.Start();
        }

        var shared = new SharedTenantLimits(redis, () => replica, policy);
        shared.Start();
        var handler = DataPlaneHandler.Create(state, admissions, router, limits, new UsageRecorder(telemetry.Usage, time), telemetry, null, time, NullLogger.Instance, shared, sharedSlots: slots);
        return new ClusterPlane(handler, state, limits, telemetry, resync, shared, slots);
    }

    public async Task<HttpContext> SendForContextAsync(string key, string requestId)
    {
        var context = ChatContext.Create(key, requestId, Model);
        await _handler.HandleAsync(context);
        return context;
    }

    public async Task<int> StatusAsync(string key, string requestId) => (await SendForContextAsync(key, requestId)).Response.StatusCode;

    public async Task<(int Status, string? RetryAfter, string Body)> SendAsync(string key, string requestId)
    {
        var context = await SendForContextAsync(key, requestId);
        var body = Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());
        return (context.Response.StatusCode, context.Response.Headers.RetryAfter.ToString() is { Length: > 0 } retry ? retry : null, body);
    }

    public async Task<string> MetricsAsync()
    {
        using var text = new MemoryStream();
        await _telemetry.WriteAsync(text, CancellationToken.None);
        return Encoding.UTF8.GetString(text.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await Shared.DisposeAsync();
        if (Slots is not null)
        {
            await Slots.DisposeAsync();
        }

        foreach (var worker in _state.Current.Workers.Workers)
        {
            await worker.Connections.CloseAsync();
        }
    }
}
