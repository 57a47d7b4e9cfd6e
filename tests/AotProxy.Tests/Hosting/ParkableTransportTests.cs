using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Threading.Channels;
using AotProxy.Hosting.Epoll;
using AotProxy.Hosting.Parking;
using AotProxy.Tests.Configuration;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Hosting;

// The parking listener with a transport of the tests' own (in-memory pipes) that has the
// IParkableTransport capability: the mechanism epoll uses (ParkedSocket) works for any transport
// that has it, with no epoll in sight. The test plays Kestrel: it reads the session's input,
// which ends at the park, and disposes the session, as Kestrel ends its connection.
public sealed class ParkableTransportTests
{
    private static readonly byte[] NextRequest = "GET /next HTTP/1.1\r\nHost: test\r\n\r\n"u8.ToArray();

    private readonly ConnectionParking _parking = new(TimeSpan.FromMilliseconds(100));
    private readonly InMemoryListener _transports = new();

    [Fact]
    public async Task ATransportThatParksWithoutItself_ParksAsItsRecord_AndIsServedAgainOnTheTransportTheRecordResumesWith()
    {
        await using var listener = new ParkingListener(_transports, _parking, TimeSpan.FromMinutes(2), null, NullLogger.Instance);
        var first = new ParksWithoutItself("first");
        _transports.Add(first);

        await ServeUntilParkedAsync(listener);
        Assert.True(await TestConfig.WaitUntil(() => first.Records.Count == 1), "the transport was never asked to park");
        var record = first.Records[0];
        Assert.Same(listener, record.Listener);
        Assert.Equal(1, _parking.Parked);

        // The record's socket has bytes: a new transport connection serves them, as a new session.
        var second = new ParksWithoutItself("second");
        await second.Client.WriteAsync(NextRequest);
        listener.Resume(record, second);
        var resumed = await AcceptAsync(listener);
        Assert.Equal("second", resumed!.ConnectionId);
        var read = await resumed.Transport.Input.ReadAsync();
        Assert.Equal(NextRequest, read.Buffer.ToArray());
        Assert.Equal(0, _parking.Parked);
        Assert.Equal(1, _parking.Parks);
        Assert.False(record.Closed);
    }

    // Not at rest when asked (ParkAsync answers null): the connection is served on, by a new
    // session on the same transport connection, and is not parked.
    [Fact]
    public async Task ATransportThatRefusesThePark_IsServedOnByANewSessionOnTheSameConnection()
    {
        await using var listener = new ParkingListener(_transports, _parking, TimeSpan.FromMinutes(2), null, NullLogger.Instance);
        var first = new ParksWithoutItself("first") { Refuse = true };
        _transports.Add(first);

        await ServeUntilParkedAsync(listener);
        var again = await AcceptAsync(listener);
        Assert.Equal("first", again!.ConnectionId);
        Assert.Equal(1, first.ParkCalls);
        Assert.Empty(first.Records);
        Assert.Equal(0, _parking.Parked);
        Assert.Equal(1, _parking.Parks);

        await first.Client.WriteAsync(NextRequest);
        var read = await again.Transport.Input.ReadAsync();
        Assert.Equal(NextRequest, read.Buffer.ToArray());
    }

    // Kestrel's part up to a park: it waits for the first request, the read ends once the
    // connection has been idle past park_idle_after, and Kestrel ends its connection.
    private static async Task ServeUntilParkedAsync(ParkingListener listener)
    {
        var session = await AcceptAsync(listener);
        Assert.NotNull(session);
        var ended = await session.Transport.Input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.True(ended.IsCompleted && ended.Buffer.IsEmpty, "the session's idle read did not end as a park");
        await session.DisposeAsync();
    }

    // Bounded: a session that never comes fails the test instead of hanging it.
    private static async Task<ConnectionContext?> AcceptAsync(ParkingListener listener) =>
        await listener.AcceptAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));

    private sealed class InMemoryListener : IConnectionListener
    {
        private readonly Channel<ConnectionContext> _accepted = Channel.CreateUnbounded<ConnectionContext>();

        public EndPoint EndPoint { get; } = new IPEndPoint(IPAddress.Loopback, 0);

        public void Add(ConnectionContext connection) => Assert.True(_accepted.Writer.TryWrite(connection));

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default) =>
            await _accepted.Reader.WaitToReadAsync(cancellationToken) && _accepted.Reader.TryRead(out var connection) ? connection : null;

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _accepted.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => UnbindAsync();
    }

    // A transport connection on two in-memory pipes; at a park it gives its place to a record.
    private sealed class ParksWithoutItself : DefaultConnectionContext, IParkableTransport
    {
        public ParksWithoutItself(string id)
            : this(id, new Pipe(), new Pipe())
        {
        }

        private ParksWithoutItself(string id, Pipe input, Pipe output)
            : base(id, new DuplexPipe(input.Reader, output.Writer), new DuplexPipe(output.Reader, input.Writer))
        {
            Client = input.Writer;
        }

        public PipeWriter Client { get; }

        public bool Refuse { get; init; }

        public int ParkCalls { get; private set; }

        public List<Record> Records { get; } = [];

        public ValueTask<ParkingNode?> ParkAsync(ParkingListener listener)
        {
            ParkCalls++;
            if (Refuse)
            {
                return new ValueTask<ParkingNode?>((ParkingNode?)null);
            }

            var record = new Record(listener);
            Records.Add(record);
            return new ValueTask<ParkingNode?>(record);
        }
    }

    private sealed class Record(ParkingListener listener) : ParkingNode
    {
        public ParkingListener Listener { get; } = listener;

        public bool Closed { get; private set; }

        internal override bool CloseParked()
        {
            Closed = true;
            Listener.Closed(this, parked: true);
            return true;
        }
    }
}
