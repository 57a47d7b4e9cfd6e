using System.Net;
using System.Text;
using AotProxy.Accounting;
using AotProxy.Admin;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tests.Ledger;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Http;

// The data plane's exactly-once finally, in process: the handler as GatewayHost wires it, over
// real limits, admission, router and ledger. The seam is the router's random source, which the
// least_connections scan draws from once it picks a worker for the first attempt: after admission,
// with admission's worker slot held, before any attempt's own cleanup could give it back.
public sealed class DataPlaneHandlerTests : IDisposable
{
    private const string Key = "sk-test-once";
    private const string Model = "m";

    private readonly LedgerFile _file = new();

    public void Dispose() => _file.Dispose();

    [Fact]
    public async Task AStageThrowingAfterAdmission_ReleasesTheSlotsAndTheLimitLease_SettlesTheJournal_AndWritesOneRow()
    {
        var time = TimeProvider.System;
        var snapshot = Snapshot();
        var store = new ConfigStore(snapshot, "<test>", time, NullLogger.Instance);
        var workers = new WorkerRegistry(time);
        workers.Apply(snapshot);
        var limits = new TenantLimits(time);
        limits.Apply(snapshot);
        var metrics = new GatewayMetrics();
        var random = new ThrowingRandom();
        var router = new Router(time, random, NullLogger.Instance);
        var admissions = new AdmissionController(new WaiterPool(time, capacity: 16), metrics, time, router);
        var ledger = LedgerWriter.Open(snapshot.Ledger, time, NullLogger.Instance, out _);
        await using (ledger)
        {
            var handler = DataPlaneHandler.Create(store, workers, admissions, router, limits, new UsageRecorder(metrics, time), metrics, ledger, time, NullLogger.Instance);

            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => handler.HandleAsync(Context("thrown")));
            Assert.Equal(ThrowingRandom.Message, thrown.Message);
            Assert.True(random.Draws > 0, "the router drew after admission");

            // The admission slot, the worker slot behind it and the tenant's in-flight place are back.
            var admission = Assert.Single(admissions.Models);
            Assert.Equal((1, 0), (admission.Slots.Capacity, admission.Slots.Used));
            Assert.Equal(0, Assert.Single(workers.Current.Workers).SlotsTaken);
            Assert.Equal(0, limits.Of("acme")!.InFlight);
        }

        // One row, the 500 Kestrel answers with, as far as the request got; its journal entry settled.
        using var connection = _file.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT request_id, status, outcome, model FROM requests";
        using (var reader = command.ExecuteReader())
        {
            Assert.True(reader.Read());
            Assert.Equal(("thrown", 500L, LedgerOutcome.Admitted, Model), (reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3)));
            Assert.False(reader.Read());
        }

        Assert.Equal(0, _file.Count(table: "journal"));
    }

    private GatewaySnapshot Snapshot()
    {
        var loaded = ConfigLoader.Parse(
            $"""
            [routing]
            strategy = "least_connections"

            [ledger]
            path = "{_file.Path}"

            [[workers]]
            name = "w"
            url = "http://127.0.0.1:9"
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

    private static DefaultHttpContext Context(string requestId)
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
        return context;
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
