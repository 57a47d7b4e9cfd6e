using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Simulator.Tests;

// SimulatorApplication.HandleAsync on a DefaultHttpContext: no socket, no Kestrel.
public sealed class InProcessTests
{
    [Fact]
    public async Task HandleAsync_ChatOnDefaultHttpContext_WritesVllmBody()
    {
        await using var application = new SimulatorApplication(new SimulatorOptions { SpeedFactor = 50 }, NullLoggerFactory.Instance);
        var context = Context("POST", TestWorker.ChatPath, TestWorker.Chat("in process", maxTokens: 4, ignoreEos: true));

        await application.HandleAsync(context);

        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
        using var json = JsonDocument.Parse(Body(context));
        Assert.Equal(4, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(1, application.Stats.Completed);
    }

    [Fact]
    public async Task HandleAsync_StreamOnDefaultHttpContext_WritesSseEvents()
    {
        await using var application = new SimulatorApplication(new SimulatorOptions { SpeedFactor = 50 }, NullLoggerFactory.Instance);
        var context = Context("POST", TestWorker.ChatPath, TestWorker.Chat("in process", maxTokens: 3, stream: true, ignoreEos: true));

        await application.HandleAsync(context);

        Assert.Equal(1 + 3 + 1, SseBody.DataPayloads(Body(context)).Count);
    }

    [Fact]
    public async Task HandleAsync_Health_Returns200()
    {
        await using var application = new SimulatorApplication(new SimulatorOptions(), NullLoggerFactory.Instance);
        var context = Context("GET", "/health", null);

        await application.HandleAsync(context);

        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
        Assert.Equal(0, context.Response.Body.Length);
    }

    [Fact]
    public void Constructor_InvalidOptions_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SimulatorApplication(new SimulatorOptions { MaxNumSeqs = 0 }, NullLoggerFactory.Instance));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SimulatorApplication(new SimulatorOptions { SpeedFactor = 0 }, NullLoggerFactory.Instance));
    }

    private static DefaultHttpContext Context(string method, string path, string? body)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        context.Request.Path = path;
        context.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(body ?? string.Empty));
        context.Response.Body = new MemoryStream();
        return context;
    }

    private static string Body(HttpContext context) => Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());
}
