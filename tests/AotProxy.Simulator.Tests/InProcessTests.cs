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

    // The pooling and tokenizer endpoints in vLLM's shapes (tests/fixtures/vllm-api), with the
    // usage the gateway accounts: the (query, document) pairs' tokens for rerank and score.
    [Theory]
    [InlineData("/v1/rerank", """{"model":"m","query":"what is vLLM","documents":["doc one.","doc two.","doc six."],"top_n":2}""", "results", 3 * 5)]
    [InlineData("/v2/rerank", """{"query":"what is vLLM","documents":["doc one."]}""", "results", 5)]
    [InlineData("/score", """{"text_1":"what is vLLM","text_2":["doc one.","doc two."]}""", "data", 2 * 5)]
    [InlineData("/v1/score", """{"text_1":["what is vLLM","what is vLLM"],"text_2":["doc one.","doc two."]}""", "data", 2 * 5)]
    [InlineData("/pooling", """{"input":["abcdefgh","abcd"]}""", "data", 3)]
    [InlineData("/classify", """{"input":"abcdefgh"}""", "data", 2)]
    public async Task HandleAsync_PoolingEndpoints_AnswerInVllmsShape_WithTheirPromptTokens(string path, string body, string items, int promptTokens)
    {
        await using var application = new SimulatorApplication(new SimulatorOptions { SpeedFactor = 50, Model = "m" }, NullLoggerFactory.Instance);
        var context = Context("POST", path, body);

        await application.HandleAsync(context);

        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
        using var json = JsonDocument.Parse(Body(context));
        var root = json.RootElement;
        var usage = root.GetProperty("usage");
        Assert.Equal(promptTokens, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(promptTokens, usage.GetProperty("total_tokens").GetInt32());
        var first = root.GetProperty(items)[0];
        switch (path)
        {
            case "/v1/rerank":
                Assert.Equal(2, root.GetProperty("results").GetArrayLength()); // top_n
                Assert.StartsWith("rerank-", root.GetProperty("id").GetString(), StringComparison.Ordinal);
                Assert.True(first.GetProperty("relevance_score").GetDouble() >= root.GetProperty("results")[1].GetProperty("relevance_score").GetDouble());
                Assert.StartsWith("doc ", first.GetProperty("document").GetProperty("text").GetString(), StringComparison.Ordinal);
                break;
            case "/score" or "/v1/score":
                Assert.Equal("score", first.GetProperty("object").GetString());
                Assert.InRange(first.GetProperty("score").GetDouble(), 0, 1);
                break;
            case "/pooling":
                Assert.Equal("pooling", first.GetProperty("object").GetString());
                Assert.Equal(2, root.GetProperty("data").GetArrayLength());
                break;
            case "/classify":
                Assert.Equal(2, first.GetProperty("num_classes").GetInt32());
                Assert.Equal(1.0, first.GetProperty("probs").EnumerateArray().Sum(p => p.GetDouble()), 6);
                Assert.Contains(first.GetProperty("label").GetString(), new[] { "negative", "positive" });
                break;
        }
    }

    [Fact]
    public async Task HandleAsync_TokenizeAndDetokenize_AnswerWithoutTheEngine()
    {
        var options = new SimulatorOptions();
        await using var application = new SimulatorApplication(options, NullLoggerFactory.Instance);
        var tokenize = Context("POST", "/tokenize", """{"prompt":"abcdefghijkl"}""");
        await application.HandleAsync(tokenize);
        using var tokens = JsonDocument.Parse(Body(tokenize));
        Assert.Equal(3, tokens.RootElement.GetProperty("count").GetInt32());
        Assert.Equal(3, tokens.RootElement.GetProperty("tokens").GetArrayLength());
        Assert.Equal(options.MaxModelLen, tokens.RootElement.GetProperty("max_model_len").GetInt32());
        Assert.False(tokens.RootElement.TryGetProperty("usage", out _));

        var detokenize = Context("POST", "/detokenize", """{"tokens":[5,6]}""");
        await application.HandleAsync(detokenize);
        using var text = JsonDocument.Parse(Body(detokenize));
        Assert.Equal(8, text.RootElement.GetProperty("prompt").GetString()!.Length);

        var missing = Context("POST", "/detokenize", """{"prompt":"x"}""");
        await application.HandleAsync(missing);
        Assert.Equal(StatusCodes.Status400BadRequest, missing.Response.StatusCode);
        Assert.Equal(0, application.Stats.Completed); // the engine ran nothing
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
