using System.Text;
using AotProxy.Configuration;
using AotProxy.Ledger;
using AotProxy.Tests.Ledger;
using AotProxy.Tests.Support;
using Microsoft.AspNetCore.Http;

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
        await using (var plane = DataPlane.Start(Snapshot(LoopbackTcpServer.ClosedPortUrl("/").ToString()), random, TimeProvider.System))
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
        await using (var plane = DataPlane.Start(Snapshot(server.Url("/").ToString()), Random.Shared, clock))
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

    private GatewaySnapshot Snapshot(string workerUrl) => DataPlane.Snapshot(_file.Path, workerUrl, Key, Model);

    private static DefaultHttpContext Context(string requestId) => ChatContext.Create(Key, requestId, Model);

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
