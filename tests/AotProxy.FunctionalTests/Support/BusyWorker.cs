using System.Net;
using System.Text;
using AotProxy.Simulator;

namespace AotProxy.FunctionalTests.Support;

// Fills a simulated worker's batch from outside the gateway (another gateway, or clients of its
// own): `count` long streams sent to it directly, held open until disposed. The gateway does not
// know about them, so the worker's own queue is what it meets.
internal sealed class BusyWorker : IAsyncDisposable
{
    private readonly HttpClient _client;
    private readonly List<HttpResponseMessage> _streams = [];

    private BusyWorker(HttpClient client) => _client = client;

    public static async Task<BusyWorker> FillAsync(SimulatedWorker worker, int count = 1)
    {
        var busy = new BusyWorker(new HttpClient { BaseAddress = worker.BaseUri, Timeout = Timeout.InfiniteTimeSpan });
        for (var i = 0; i < count; i++)
        {
            var body = $$"""{"model":"{{worker.Options.Model}}","messages":[{"role":"user","content":"hold {{i}}"}],"max_tokens":4000,"ignore_eos":true,"stream":true}""";
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            var response = await busy._client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            busy._streams.Add(response);
        }

        // Running, not waiting: the seats are taken.
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.Running >= count), $"{count} stream(s) run on {worker.Options.Name}");
        return busy;
    }

    public ValueTask DisposeAsync()
    {
        foreach (var stream in _streams)
        {
            stream.Dispose();
        }

        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
