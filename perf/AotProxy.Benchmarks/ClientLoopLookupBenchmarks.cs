using System.Net;
using System.Net.Sockets;
using System.Text;
using AotProxy.Hosting;
using AotProxy.Hosting.Epoll;
using AotProxy.Hosting.Parking;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// What the forwarder's per-request read of its client connection's loop costs (issue 22,
// park22b): Features.Get<EpollLoop>() on a live request of a real Kestrel on the epoll transport,
// with parking (the default: Kestrel's request features, then the parking session's, then the
// EpollConnection's) and without. Beside it, the per-request ParkableConnection lookup
// (MarkBodyRead, MarkRequestEnded) and one of Kestrel's own request features for scale.
// (object: the types are internal.) The request is held open while the benchmark reads its features from another thread (reads only).
[MemoryDiagnoser]
public class ClientLoopLookupBenchmarks
{
    private readonly TaskCompletionSource<HttpContext> _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private KestrelListener _listener = null!;
    private TcpClient _client = null!;
    private HttpContext _context = null!;

    [Params(true, false)]
    public bool Parking { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var options = new ListenerOptions
        {
            Transport = ListenerTransport.Epoll,
            Parking = Parking ? new ConnectionParking(TimeSpan.FromSeconds(1)) : null,
        };
        _listener = KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), HoldAsync, NullLoggerFactory.Instance, options).GetAwaiter().GetResult();
        _client = new TcpClient();
        _client.Connect(_listener.EndPoint);
        _client.GetStream().Write("GET /hold HTTP/1.1\r\nHost: bench\r\n\r\n"u8);
        _context = _arrived.Task.WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        if (ClientLoop() is null)
        {
            throw new InvalidOperationException("the request sees no client loop: not on the epoll transport");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _release.TrySetResult();
        _client.Dispose();
        _listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true)]
    public object? ClientLoop() => _context.Features.Get<EpollLoop>();

    [Benchmark]
    public object? Parkable() => _context.Features.Get<ParkableConnection>();

    [Benchmark]
    public object? KestrelRequestFeature() => _context.Features.Get<IHttpRequestBodyDetectionFeature>();

    private async Task HoldAsync(HttpContext context)
    {
        _arrived.TrySetResult(context);
        await _release.Task;
        var bytes = Encoding.UTF8.GetBytes("done");
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes);
    }
}
