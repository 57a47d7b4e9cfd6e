using System.Text;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tests.Ledger;
using AotProxy.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Http;

// The data plane's exactly-once finally, in process: the handler as GatewayHost wires it, over
// real limits, admission, router and ledger, with one component that throws. After admission: the
// router's random source, which the least_connections scan draws from to pick the first attempt's
// worker, with admission's worker slot held and before any attempt's own cleanup could give it
// back. After the answer: the usage recorder's clock, read once the worker has answered.
public sealed class DataPlaneHandlerTests : IDisposable
{
    private const string Key = "sk-test-once";
    private const string Model = "m";

    private readonly LedgerFile _file = new();

    public void Dispose() => _file.Dispose();

    [Fact]
    public async Task AStageThrowingAfterAdmission_ReleasesTheSlotsAndTheLimitLease_SettlesTheJournal_AndWritesOneRow()
    {
        var random = new ThrowingRandom();
        await using (var plane = Plane.Start(Snapshot(LoopbackTcpServer.ClosedPortUrl("/").ToString()), random, TimeProvider.System))
        {
            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => plane.Handler.HandleAsync(Context("thrown")));
            Assert.Equal(ThrowingRandom.Message, thrown.Message);
            Assert.True(random.Draws > 0, "the router drew after admission");
            plane.AssertReleased();
        }

        // One row, the 500 Kestrel answers with, as far as the request got; its journal entry settled.
        Assert.Equal(("thrown", 500L, LedgerOutcome.Admitted, Model, ""), SingleRow());
        Assert.Equal(0, _file.Count(table: "journal"));
    }

    // The same after the answer: the account stage throws once the forwarder has given the worker
    // slot back, which the finally must not give back a second time.
    [Fact]
    public async Task AStageThrowingAfterTheAnswer_ReleasesEachSlotOnce_SettlesTheJournal_AndWritesOneRow()
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
            return true;
        });
        var clock = new ThrowingClock();
        await using (var plane = Plane.Start(Snapshot(server.Url("/").ToString()), Random.Shared, clock))
        {
            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => plane.Handler.HandleAsync(Context("answered")));
            Assert.Equal(ThrowingClock.Message, thrown.Message);
            Assert.Equal(1, server.Requests);
            plane.AssertReleased();
        }

        Assert.Equal(("answered", 500L, LedgerOutcome.Admitted, Model, "w"), SingleRow());
        Assert.Equal(0, _file.Count(table: "journal"));
    }

    private (string Id, long Status, string Outcome, string Model, string Worker) SingleRow()
    {
        using var connection = _file.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT request_id, status, outcome, model, worker FROM requests";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        var row = (reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetString(4));
        Assert.False(reader.Read());
        return row;
    }

    private GatewaySnapshot Snapshot(string workerUrl)
    {
        var loaded = ConfigLoader.Parse(
            $"""
            [routing]
            strategy = "least_connections"

            [ledger]
            path = "{_file.Path}"

            [[workers]]
            name = "w"
            url = "{workerUrl}"
            models = ["{Model}"]
            max_concurrency = 1

            [[tenants]]
            name = "acme"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(Key)}"]
            rpm = 100
            max_in_flight = 4
            """,
            "test.toml",
            1,
            TimeProvider.System);
        Assert.True(loaded.IsValid, loaded.ToString());
        return loaded.Snapshot;
    }

    private static DefaultHttpContext Context(string requestId) => ChatContext.Create(Key, requestId, Model);

    // The data plane as GatewayHost wires it (DataPlaneHandler.Create), over its own state. The
    // router draws from `random`; the usage recorder reads `usageClock`.
    private sealed class Plane : IAsyncDisposable
    {
        private Plane(DataPlaneHandler handler, AdmissionController admissions, GatewayState state, TenantLimits limits, LedgerWriter ledger)
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

        public static Plane Start(GatewaySnapshot snapshot, Random random, TimeProvider usageClock)
        {
            var time = TimeProvider.System;
            var limits = new TenantLimits(time);
            var telemetry = new GatewayTelemetry();
            var router = new Router(time, random, NullLogger.Instance);
            var capacity = new CapacitySignal(time);
            var admissions = new AdmissionController(new WaiterPool(time, capacity: 16), telemetry.Admission, time, router, capacity);
            var state = new GatewayState(snapshot, new WorkerRegistry(time, capacity), limits, admissions, new HeapCompaction(time, NullLogger.Instance), NullLogger.Instance);
            var ledger = LedgerWriter.Open(snapshot.Ledger, time, NullLogger.Instance, out _);
            var handler = DataPlaneHandler.Create(state, admissions, router, limits, new UsageRecorder(telemetry.Usage, usageClock), telemetry, ledger, time, NullLogger.Instance);
            return new Plane(handler, admissions, state, limits, ledger);
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

    // A clock that fails when asked the date.
    private sealed class ThrowingClock : TimeProvider
    {
        public const string Message = "the clock failed";

        public override DateTimeOffset GetUtcNow() => throw new InvalidOperationException(Message);
    }

    // A random source that fails when drawn from.
    private sealed class ThrowingRandom : Random
    {
        public const string Message = "the random source failed";

        private int _draws;

        public int Draws => Volatile.Read(ref _draws);

        public override int Next(int maxValue) => Throw();

        public override int Next(int minValue, int maxValue) => Throw();

        public override int Next() => Throw();

        public override double NextDouble() => Throw();

        private int Throw()
        {
            Interlocked.Increment(ref _draws);
            throw new InvalidOperationException(Message);
        }
    }
}
