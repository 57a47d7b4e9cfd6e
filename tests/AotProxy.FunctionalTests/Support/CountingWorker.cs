using System.Net;
using System.Text;
using AotProxy.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests.Support;

// A worker's control plane on loopback (real Kestrel), counted: GET /metrics answers the vLLM
// 0.19.1 capture (TestGateway.Model's series) plus `extraMetrics`, GET /v1/models the vLLM capture
// of a model list (a base model and the adapters lora-1 and lora-2), GET /health 200. A test waits
// on the counters, woken by each request, for what the gateway asked.
internal sealed class CountingWorker : IAsyncDisposable
{
    private readonly KestrelListener _listener;
    private readonly byte[] _metrics;
    private readonly byte[] _models = Fixtures.Bytes("openai/models.json");
    private readonly ChangeSignal _changed = new();
    private int _scrapes;
    private int _modelLists;

    private CountingWorker(KestrelListener listener, byte[] metrics)
    {
        _listener = listener;
        _metrics = metrics;
    }

    public Uri BaseUri => _listener.BaseUri;

    public int Scrapes => Volatile.Read(ref _scrapes);

    public int ModelLists => Volatile.Read(ref _modelLists);

    public static async Task<CountingWorker> StartAsync(string extraMetrics = "")
    {
        CountingWorker? worker = null;
        var listener = await KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), context => worker!.HandleAsync(context), NullLoggerFactory.Instance);
        worker = new CountingWorker(listener, [.. Fixtures.Bytes("vllm/metrics-v1-0.19.1.txt"), .. Encoding.UTF8.GetBytes(extraMetrics)]);
        return worker;
    }

    public string Section(params string[] models) => $"""

        [[workers]]
        name = "counted"
        url = "{BaseUri}"
        models = [{string.Join(", ", models.Select(m => $"\"{m}\""))}]
        """;

    // Until the condition on the counters holds: woken by each request, bounded by 20 s.
    public Task WaitUntilAsync(Func<CountingWorker, bool> condition, string what) =>
        _changed.WaitUntilAsync(() => condition(this), TimeSpan.FromSeconds(20), what, () => $"scrapes {Scrapes}, model lists {ModelLists}");

    public ValueTask DisposeAsync() => _listener.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        switch (context.Request.Path.Value)
        {
            case "/metrics":
                Count(ref _scrapes);
                await context.Response.Body.WriteAsync(_metrics);
                break;
            case "/v1/models":
                Count(ref _modelLists);
                context.Response.ContentType = "application/json";
                await context.Response.Body.WriteAsync(_models);
                break;
            case "/health":
                break;
            default:
                context.Response.StatusCode = 404;
                break;
        }
    }

    private void Count(ref int counter)
    {
        Interlocked.Increment(ref counter);
        _changed.Changed();
    }
}
