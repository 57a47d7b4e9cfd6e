using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Simulator.Tests;

// A simulated worker on a loopback port with a real HttpClient pointed at it.
internal sealed class TestWorker : IAsyncDisposable
{
    public const string ChatPath = "/v1/chat/completions";
    public const string CompletionsPath = "/v1/completions";

    private TestWorker(SimulatedWorker worker)
    {
        Worker = worker;
        Client = new HttpClient { BaseAddress = worker.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public SimulatedWorker Worker { get; }

    public HttpClient Client { get; }

    public SimulatorStats Stats => Worker.Stats;

    public SimulatorFaults Faults => Worker.Options.Faults;

    // 50x speed unless a test says otherwise: 5,000 tok/s decode keeps shape tests quick.
    public static async Task<TestWorker> StartAsync(Action<SimulatorOptions>? configure = null, ILoggerFactory? loggerFactory = null)
    {
        var options = new SimulatorOptions { SpeedFactor = 50 };
        configure?.Invoke(options);
        var worker = await SimulatedWorker.StartAsync(options, new IPEndPoint(IPAddress.Loopback, 0), loggerFactory ?? NullLoggerFactory.Instance);
        return new TestWorker(worker);
    }

    public static HttpRequestMessage Post(string path, string json, string? requestId = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (requestId is not null)
        {
            request.Headers.Add("X-Request-Id", requestId);
        }

        return request;
    }

    public static string Chat(string content, int? maxTokens = null, bool stream = false, bool includeUsage = false, bool ignoreEos = false, string model = "meta-llama/Llama-3.1-8B-Instruct")
    {
        var body = new StringBuilder();
        body.Append("{\"model\":\"").Append(model).Append("\",\"messages\":[{\"role\":\"user\",\"content\":\"").Append(content).Append("\"}]");
        if (maxTokens is { } max)
        {
            body.Append(",\"max_tokens\":").Append(max);
        }

        if (stream)
        {
            body.Append(",\"stream\":true");
        }

        if (includeUsage)
        {
            body.Append(",\"stream_options\":{\"include_usage\":true}");
        }

        if (ignoreEos)
        {
            body.Append(",\"ignore_eos\":true");
        }

        return body.Append('}').ToString();
    }

    public async Task<(HttpResponseMessage Response, string Body)> SendAsync(string path, string json, string? requestId = null, CancellationToken ct = default)
    {
        var response = await Client.SendAsync(Post(path, json, requestId), ct);
        return (response, await response.Content.ReadAsStringAsync(ct));
    }

    public async Task<byte[]> SendForBytesAsync(string path, string json, string? requestId = null)
    {
        using var response = await Client.SendAsync(Post(path, json, requestId));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }

    // Sends and returns once the headers are in; the body is left for the caller to read.
    public Task<HttpResponseMessage> OpenStreamAsync(string path, string json, CancellationToken ct = default) =>
        Client.SendAsync(Post(path, json), HttpCompletionOption.ResponseHeadersRead, ct);

    public async Task<string> GetStringAsync(string path)
    {
        using var response = await Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Worker.DisposeAsync();
    }
}
