using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using AotProxy.Http;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Tests.Http;

// Errors in each API's own shape: a /v1/messages request gets Anthropic's body and status, every
// other path OpenAI's; a stream cut mid-way ends with the event its API's SDK raises.
public sealed class AnthropicErrorTests
{
    [Theory]
    [InlineData(400, 400, "invalid_request_error")]
    [InlineData(401, 401, "authentication_error")]
    [InlineData(403, 403, "permission_error")]
    [InlineData(404, 404, "not_found_error")]
    [InlineData(413, 413, "request_too_large")]
    [InlineData(429, 429, "rate_limit_error")]
    [InlineData(500, 500, "api_error")]
    [InlineData(502, 502, "api_error")]
    [InlineData(503, 529, "overloaded_error")]
    [InlineData(504, 504, "api_error")]
    public async Task WriteAsync_OnMessages_IsAnthropicShapedWithAnthropicsStatus(int status, int expectedStatus, string expectedType)
    {
        var (context, body) = Context(OpenAiError.MessagesPath);
        context.Response.Headers.RetryAfter = "3";

        await OpenAiError.WriteAsync(context, status, "server_error", "overloaded", "The queue is full.");

        Assert.Equal(expectedStatus, context.Response.StatusCode);
        Assert.Equal($$$"""{"type":"error","error":{"type":"{{{expectedType}}}","message":"The queue is full."}}""", Encoding.UTF8.GetString(body.ToArray()));
        Assert.Equal("3", context.Response.Headers.RetryAfter.ToString()); // headers unchanged
    }

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/responses")]
    [InlineData("/v1/messages/")] // not the Messages API's path
    public async Task WriteAsync_ElsewhereIsOpenAiShaped(string path)
    {
        var (context, body) = Context(path);

        await OpenAiError.WriteAsync(context, 503, "server_error", "overloaded", "The queue is full.");

        Assert.Equal(503, context.Response.StatusCode);
        Assert.Equal("""{"error":{"message":"The queue is full.","type":"server_error","param":null,"code":"overloaded"}}""", Encoding.UTF8.GetString(body.ToArray()));
    }

    [Fact]
    public async Task Unidentified_OnMessages_NamesXApiKey()
    {
        var (context, body) = Context(OpenAiError.MessagesPath);

        await OpenAiError.Unidentified(context, AotProxy.Identity.IdentifyFailure.MissingCredentials);

        using var json = JsonDocument.Parse(body.ToArray());
        Assert.Equal(401, context.Response.StatusCode);
        Assert.Equal("authentication_error", json.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("x-api-key", json.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    // Golden bytes: what each stream's client parses.
    [Theory]
    [InlineData("ChatCompletions", "data: {\"error\":{\"message\":\"Idle.\",\"type\":\"server_error\",\"param\":null,\"code\":\"stream_idle_timeout\"}}\n\ndata: [DONE]\n\n")]
    [InlineData("Responses", "event: error\ndata: {\"type\":\"error\",\"code\":\"stream_idle_timeout\",\"message\":\"Idle.\",\"param\":null}\n\n")]
    [InlineData("Messages", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Idle.\"}}\n\n")]
    public async Task WriteStreamError_IsTheStreamsOwnErrorEvent(string endpoint, string expected)
    {
        var body = new MemoryStream();
        var writer = PipeWriter.Create(body);

        OpenAiError.WriteStreamError(writer, Enum.Parse<EndpointKind>(endpoint), "server_error", "stream_idle_timeout", "Idle.");
        await writer.FlushAsync();

        Assert.Equal(expected, Encoding.UTF8.GetString(body.ToArray()));
    }

    [Theory]
    [InlineData("insufficient_quota", "rate_limit_error")] // a budget cut
    [InlineData("server_error", "api_error")]
    public void Type_OfAMidStreamError(string openAiType, string anthropicType) =>
        Assert.Equal(anthropicType, AnthropicError.Type(openAiType));

    private static (DefaultHttpContext Context, MemoryStream Body) Context(string path)
    {
        var context = new DefaultHttpContext();
        context.Request.Path = path;
        var body = new MemoryStream();
        context.Response.Body = body;
        return (context, body);
    }
}
