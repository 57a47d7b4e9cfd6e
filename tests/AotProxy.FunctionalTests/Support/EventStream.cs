using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// GET /api/events as the dashboard reads it: one `event: state` message at a time, its JSON
// parsed. Every read is bounded, so a stream that stops sending fails the test instead of hanging it.
internal sealed class EventStream : IAsyncDisposable
{
    private static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(10);

    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private EventStream(HttpResponseMessage response, StreamReader reader)
    {
        _response = response;
        _reader = reader;
    }

    public static async Task<HttpResponseMessage> SendAsync(HttpClient admin, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return await admin.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    public static async Task<EventStream> OpenAsync(HttpClient admin, string? token = null)
    {
        var response = await SendAsync(admin, token);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            // Read only when refused: a 200's body never ends.
            Assert.Fail($"GET /api/events: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", response.Headers.CacheControl?.ToString());
        return new EventStream(response, new StreamReader(await response.Content.ReadAsStreamAsync()));
    }

    // The next message: `event: state`, one `data:` line of JSON, a blank line.
    public async Task<JsonElement> NextAsync(TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? DefaultWait);
        string? type = null, data = null;
        while (true)
        {
            var line = await _reader.ReadLineAsync(deadline.Token) ?? throw new EndOfStreamException("the event stream ended");
            if (line.Length == 0)
            {
                Assert.Equal("state", type);
                Assert.NotNull(data);
                using var document = JsonDocument.Parse(data);
                return document.RootElement.Clone();
            }

            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                Assert.Null(data); // one data line per message
                data = line["data: ".Length..];
            }
        }
    }

    // Reads messages until one matches, for at most `timeout` in all.
    public async Task<JsonElement> WaitForAsync(Func<JsonElement, bool> match, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultWait);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, "no event stream message " + what);
            JsonElement message;
            try
            {
                message = await NextAsync(left);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail("no event stream message " + what);
                throw;
            }

            if (match(message))
            {
                return message;
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _response.Dispose();
        return ValueTask.CompletedTask;
    }
}
