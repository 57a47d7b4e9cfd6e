using System.Net;
using System.Net.Sockets;
using System.Text;
using AotProxy.Hosting;
using AotProxy.Hosting.Parking;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// What a park and resume of a keep-alive connection allocates (issue 22, park22b): a real Kestrel
// on the epoll transport (and on sockets), 100 keep-alive connections; one operation sends one GET on each and
// reads its answer. With parking each connection was parked before the request (the request
// resumes it: a new EpollConnection, pipes, ParkableConnection, session, and Kestrel's connection)
// and the operation waits until all 100 have parked again; without parking the same requests are
// served by the same Kestrel connections. The difference per connection is one park + resume.
// The client is plain blocking sockets with preallocated buffers (nothing allocated on its side).
// RequestOnEachConnection's time is the parking tick's wait (about a second), not the cost: read its
// Allocated; ResumeEachConnection times the 100 requests alone (each resumes a parked connection).
//
//   dotnet run -c Release --project perf/AotProxy.Benchmarks -- --filter '*ParkCycleBenchmarks*' --inProcess \
//     --strategy Monitoring --launchCount 1 --warmupCount 1 --iterationCount 5 --invocationCount 1 --unrollFactor 1
[MemoryDiagnoser]
public class ParkCycleBenchmarks
{
    private const int Connections = 100;
    private static readonly byte[] Request = "GET /x HTTP/1.1\r\nHost: bench\r\n\r\n"u8.ToArray();
    private static readonly byte[] Answer = Encoding.ASCII.GetBytes("parked?");

    private readonly byte[] _buffer = new byte[4096];
    private readonly Socket[] _clients = new Socket[Connections];
    private ConnectionParking? _parking;
    private KestrelListener _listener = null!;
    private int _answerLength;

    [Params(true, false)]
    public bool Parking { get; set; }

    // Sockets parks whole (its transport objects stay): its figure is the part of epoll's that is
    // not the transport's (ParkingSession, Kestrel's connection).
    [Params(ListenerTransport.Epoll, ListenerTransport.Sockets)]
    public ListenerTransport Transport { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _parking = Parking ? new ConnectionParking(TimeSpan.FromMilliseconds(100)) : null;
        var options = new ListenerOptions { Transport = Transport, Parking = _parking };
        _listener = KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), AnswerAsync, NullLoggerFactory.Instance, options).GetAwaiter().GetResult();
        for (var i = 0; i < Connections; i++)
        {
            _clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            _clients[i].Connect(_listener.EndPoint);
        }

        // The first answer's length is every answer's (fixed headers, no Date change within a read).
        _clients[0].Send(Request);
        _answerLength = _clients[0].Receive(_buffer);
        for (var i = 1; i < Connections; i++)
        {
            Exchange(_clients[i]);
        }

        WaitUntilAllParked(Connections);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        _listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark]
    public void RequestOnEachConnection()
    {
        var parks = _parking?.Parks ?? 0;
        foreach (var client in _clients)
        {
            Exchange(client);
        }

        WaitUntilAllParked(parks + Connections);
    }

    // The resume alone, timed: every connection is parked before the operation (the wait is the
    // iteration's setup, not measured), which only sends the 100 requests one after another and
    // reads their answers. Allocated: the resumes and requests (a park's own objects come in the
    // setup and are not counted here).
    [IterationSetup(Target = nameof(ResumeEachConnection))]
    public void ParkAll() => WaitUntilAllParked(_parking?.Parks ?? 0);

    [Benchmark]
    public void ResumeEachConnection()
    {
        foreach (var client in _clients)
        {
            Exchange(client);
        }
    }

    // Bounded: 30 s at most, then the operation fails (a park that never came).
    private void WaitUntilAllParked(long parks)
    {
        if (_parking is null)
        {
            return;
        }

        for (var i = 0; i < 3000 && (_parking.Parks < parks || _parking.Parked < Connections); i++)
        {
            Thread.Sleep(10);
        }

        if (_parking.Parks < parks || _parking.Parked < Connections)
        {
            throw new InvalidOperationException($"parks={_parking.Parks} parked={_parking.Parked}, waited for parks={parks}");
        }
    }

    private void Exchange(Socket client)
    {
        client.Send(Request);
        var received = 0;
        while (received < _answerLength)
        {
            var n = client.Receive(_buffer, received, _buffer.Length - received, SocketFlags.None);
            if (n == 0)
            {
                throw new InvalidOperationException("the server closed a keep-alive connection");
            }

            received += n;
        }
    }

    private static Task AnswerAsync(HttpContext context)
    {
        context.Response.ContentLength = Answer.Length;
        return context.Response.Body.WriteAsync(Answer).AsTask();
    }
}
