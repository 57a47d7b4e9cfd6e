using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using AotProxy.Load.Recording;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AotProxy.Load.Tests.Support;

// A loopback Kestrel server answering every POST with a small chat completion, optionally after a
// delay chosen per request (by its arrival number, from 1); statusFor may answer some with an
// error status instead (an OpenAI-shaped 429, say). It records the body sizes it received, and
// every request's body and x-session-id header. A request that asks to stream gets an SSE answer
// whose text names its arrival ("answer 7"), in two content events. holdFor (optional): a task an
// answer also waits for, after its delay (a test's gate).
internal sealed class StubServer : IAsyncDisposable
{
    private static readonly byte[] Completion = """
        {"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":1}}
        """u8.ToArray();

    private static readonly byte[] RateLimited = """
        {"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}
        """u8.ToArray();

    private readonly WebApplication _app;
    private long _arrivals;
    private long _bodyBytes;
    private long _inFlightPerSession;
    private readonly ConcurrentDictionary<string, int> _sessionsInFlight = new(StringComparer.Ordinal);

    private StubServer(WebApplication app) => _app = app;

    public Uri BaseUri { get; private set; } = null!;

    public long Arrivals => Interlocked.Read(ref _arrivals);

    // The sum of the request bodies' sizes.
    public long BodyBytes => Interlocked.Read(ref _bodyBytes);

    // Every request, in arrival order: its x-session-id (null: none) and its body.
    public ConcurrentQueue<(long Arrival, string? Session, string Body)> Requests { get; } = new();

    // The most requests of one session that were in the server at once.
    public long MaxInFlightPerSession => Interlocked.Read(ref _inFlightPerSession);

    public static async Task<StubServer> StartAsync(Func<long, TimeSpan> delayFor, Func<long, int>? statusFor = null, Func<long, Task>? holdFor = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new StubServer(app);
        app.Run(async context =>
        {
            var arrival = Interlocked.Increment(ref server._arrivals);
            var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            Interlocked.Add(ref server._bodyBytes, body.Length);
            var text = Encoding.UTF8.GetString(body.ToArray());
            var session = context.Request.Headers.TryGetValue("x-session-id", out var value) ? value.ToString() : null;
            server.Requests.Enqueue((arrival, session, text));
            if (session is not null)
            {
                var now = server._sessionsInFlight.AddOrUpdate(session, 1, (_, n) => n + 1);
                Atomic.Max(ref server._inFlightPerSession, now);
            }

            try
            {
                var delay = delayFor(arrival);
                // Task.Delay's timer runs on a coarse clock and may fire several ms early (CI saw
                // 94 ms for 100): wait again until the Stopwatch agrees the delay has passed.
                var until = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
                for (var left = delay; left > TimeSpan.Zero; left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), until))
                {
                    await Task.Delay(left < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : left, context.RequestAborted);
                }

                if (holdFor is not null)
                {
                    await holdFor(arrival).WaitAsync(context.RequestAborted);
                }

                await server.AnswerAsync(context, arrival, text, statusFor);
            }
            finally
            {
                if (session is not null)
                {
                    server._sessionsInFlight.AddOrUpdate(session, 0, (_, n) => n - 1);
                }
            }
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUri = new Uri(address);
        return server;
    }

    private async Task AnswerAsync(HttpContext context, long arrival, string body, Func<long, int>? statusFor)
    {

        context.Response.ContentType = "application/json";
        var status = statusFor?.Invoke(arrival) ?? StatusCodes.Status200OK;
        if (status != StatusCodes.Status200OK)
        {
            context.Response.StatusCode = status;
            await context.Response.Body.WriteAsync(RateLimited, context.RequestAborted);
            return;
        }

        if (!body.Contains("\"stream\":true", StringComparison.Ordinal))
        {
            await context.Response.Body.WriteAsync(Completion, context.RequestAborted);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        foreach (var content in new[] { "answer", $" {arrival}" })
        {
            await context.Response.WriteAsync($$$"""data: {"choices":[{"index":0,"delta":{"content":"{{{content}}}"}}]}""" + "\n\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }

        await context.Response.WriteAsync("""data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}""" + "\n\ndata: [DONE]\n\n", context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
