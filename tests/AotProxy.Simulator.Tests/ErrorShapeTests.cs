using System.Net;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

public sealed class ErrorShapeTests
{
    private static readonly List<string> NestedErrorPaths = JsonShape.Paths(Fixtures.Text("openai/error_vllm_nested.json"));

    [Fact]
    public async Task UnknownPath_Returns404NestedNotFoundError()
    {
        await using var worker = await TestWorker.StartAsync();

        using var response = await worker.Client.GetAsync("/v1/does-not-exist");
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        AssertError(body, "NotFoundError", 404);
    }

    [Fact]
    public async Task WrongModel_Returns404ModelDoesNotExist()
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", model: "gpt-4o"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = AssertError(body, "NotFoundError", 404);
        Assert.Equal("The model `gpt-4o` does not exist.", error.GetProperty("message").GetString());
        Assert.Equal(0, worker.Stats.Running + worker.Stats.Waiting);
    }

    [Theory]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}")]
    [InlineData("not json at all")]
    [InlineData("[1,2,3]")]
    [InlineData("{\"model\":\"meta-llama/Llama-3.1-8B-Instruct\"}")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":42}]}")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":\"ten\"}")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":0}")]
    public async Task BadBody_Returns400NestedBadRequestError(string json)
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, json);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertError(body, "BadRequestError", 400);
    }

    [Fact]
    public async Task PromptPlusMaxTokensOverContext_Returns400ContextLength()
    {
        await using var worker = await TestWorker.StartAsync(o => o.NumGpuBlocks = 64);

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat(new string('x', 4000), maxTokens: 100));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = AssertError(body, "BadRequestError", 400);
        Assert.StartsWith("This model's maximum context length is 1024 tokens.", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetOnChatCompletions_Returns405()
    {
        await using var worker = await TestWorker.StartAsync();

        using var response = await worker.Client.GetAsync(TestWorker.ChatPath);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
    }

    private static JsonElement AssertError(string body, string type, int code)
    {
        Assert.Equal(NestedErrorPaths, JsonShape.Paths(body));
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetInt32());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        return error;
    }
}
