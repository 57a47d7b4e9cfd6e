using System.Net;
using AotProxy.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests.Support;

// An OTLP/HTTP trace receiver on loopback (a collector's POST /v1/traces, protobuf): it keeps
// every span it is sent, and a test waits for the spans it expects, bounded, woken by each export.
internal sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly KestrelListener _listener;
    private readonly List<OtlpSpan> _spans = [];
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _exports;

    private OtlpReceiver(KestrelListener listener) => _listener = listener;

    // The base URL [telemetry] otlp_endpoint takes.
    public string Endpoint => _listener.BaseUri.ToString().TrimEnd('/');

    public int Exports => Volatile.Read(ref _exports);

    public IReadOnlyList<OtlpSpan> Spans
    {
        get
        {
            lock (_spans)
            {
                return [.. _spans];
            }
        }
    }

    public static async Task<OtlpReceiver> StartAsync()
    {
        OtlpReceiver? receiver = null;
        var listener = await KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), context => receiver!.HandleAsync(context), NullLoggerFactory.Instance);
        receiver = new OtlpReceiver(listener);
        return receiver;
    }

    // The spans matching `match`, once there are at least `count` of them; at most 20 s.
    public async Task<List<OtlpSpan>> WaitForAsync(Func<OtlpSpan, bool> match, int count, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            Task arrived;
            lock (_spans)
            {
                var found = _spans.Where(match).ToList();
                if (found.Count >= count)
                {
                    return found;
                }

                arrived = _arrived.Task;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || await Task.WhenAny(arrived, Task.Delay(left)) != arrived)
            {
                Assert.Fail($"{what}: not received within 20 s; got {string.Join(", ", Spans.Select(s => $"{s.Service}/{s.Name}"))}");
            }
        }
    }

    public ValueTask DisposeAsync() => _listener.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        if (context.Request.Method != "POST" || context.Request.Path != "/v1/traces")
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var spans = OtlpTraceReader.Read(body.ToArray());
        TaskCompletionSource arrived;
        lock (_spans)
        {
            _spans.AddRange(spans);
            _exports++;
            arrived = _arrived;
            _arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        arrived.SetResult();
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/x-protobuf";
    }
}
