using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Support;

// The data plane as GatewayHost wires it (DataPlaneHandler.Create), over its own state. The
// router draws from `random`; the usage recorder reads `usageClock`.
internal sealed class DataPlane : IAsyncDisposable
{
    private DataPlane(DataPlaneHandler handler, AdmissionController admissions, GatewayState state, TenantLimits limits, LedgerWriter ledger)
    {
        Handler = handler;
        Admissions = admissions;
        State = state;
        Limits = limits;
        Ledger = ledger;
    }

    public DataPlaneHandler Handler { get; }

    public AdmissionController Admissions { get; }

    public GatewayState State { get; }

    public TenantLimits Limits { get; }

    public LedgerWriter Ledger { get; }

    // One worker "w" with one slot for `model`, least_connections, tenant "acme" with `key` (rpm
    // 100, max_in_flight 4), the ledger at `ledgerPath`, then `extra` TOML.
    public static GatewaySnapshot Snapshot(string ledgerPath, string workerUrl, string key, string model, string extra = "")
    {
        var loaded = ConfigLoader.Parse(
            $"""
            [routing]
            strategy = "least_connections"

            [ledger]
            path = "{ledgerPath}"

            [[workers]]
            name = "w"
            url = "{workerUrl}"
            models = ["{model}"]
            max_concurrency = 1

            [[tenants]]
            name = "acme"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(key)}"]
            rpm = 100
            max_in_flight = 4
            {extra}
            """,
            "test.toml",
            1,
            TimeProvider.System);
        Assert.True(loaded.IsValid, loaded.ToString());
        return loaded.Snapshot;
    }

    public static DataPlane Start(GatewaySnapshot snapshot, Random random, TimeProvider usageClock)
    {
        var time = TimeProvider.System;
        var limits = new TenantLimits(time);
        var telemetry = new GatewayTelemetry();
        var router = new Router(time, random, NullLogger.Instance);
        var capacity = new CapacitySignal(time);
        var admissions = new AdmissionController(new WaiterPool(time, capacity: 16), telemetry.Admission, time, router, capacity);
        var state = new GatewayState(snapshot, new WorkerRegistry(time, capacity), limits, admissions, new AotProxy.Caching.ResponseCache(time), new HeapCompaction(time, NullLogger.Instance), NullLogger.Instance);
        var ledger = LedgerWriter.Open(snapshot.Ledger, time, NullLogger.Instance, out _);
        var handler = DataPlaneHandler.Create(state, admissions, router, limits, new UsageRecorder(telemetry.Usage, usageClock), telemetry, ledger, time, NullLogger.Instance);
        return new DataPlane(handler, admissions, state, limits, ledger);
    }

    // The admission slot, the worker slot behind it and the tenant's in-flight place are back, once.
    public void AssertReleased()
    {
        var admission = Assert.Single(Admissions.Models);
        Assert.Equal((1, 0), (admission.Slots.Capacity, admission.Slots.Used));
        Assert.Equal(0, Assert.Single(State.Current.Workers.Workers).SlotsTaken);
        Assert.Equal(0, Limits.Of("acme")!.InFlight);
    }

    // Writes what is queued: the rows are in the file after this.
    public async ValueTask DisposeAsync()
    {
        await Ledger.DisposeAsync();
        foreach (var worker in State.Current.Workers.Workers)
        {
            await worker.Connections.CloseAsync();
        }
    }
}
