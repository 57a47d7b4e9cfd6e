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

    // vLLM's text (its V0 engine's add_request); the last of duplicate keys counts, as in Python.
    [Theory]
    [InlineData(",\"priority\":2", 2)]
    [InlineData(",\"priority\":-1", -1)]
    [InlineData(",\"priority\":0,\"priority\":3", 3)]
    public async Task Fcfs_PriorityNotZero_Returns400PriorityNotEnabled(string priority, int expected)
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 4).TrimEnd('}') + priority + "}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = AssertError(body, "BadRequestError", 400);
        Assert.Equal($"Got priority {expected} but Priority scheduling is not enabled.", error.GetProperty("message").GetString());
        Assert.Equal((0L, 0), (worker.Stats.Completed, worker.Stats.Running + worker.Stats.Waiting));
    }

    [Theory]
    [InlineData(SchedulingPolicy.Fcfs, ",\"priority\":0")]
    [InlineData(SchedulingPolicy.Fcfs, ",\"priority\":5,\"priority\":0")]
    [InlineData(SchedulingPolicy.Priority, ",\"priority\":5")]
    [InlineData(SchedulingPolicy.Priority, ",\"priority\":-3")]
    public async Task PriorityThePolicyAccepts_Returns200(SchedulingPolicy policy, string priority)
    {
        await using var worker = await TestWorker.StartAsync(o => o.SchedulingPolicy = policy);

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 4).TrimEnd('}') + priority + "}");

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
    }

    [Theory]
    [InlineData("null")]
    [InlineData("\"2\"")]
    [InlineData("1.5")]
    public async Task PriorityNotAnInteger_Returns400(string value)
    {
        await using var worker = await TestWorker.StartAsync(o => o.SchedulingPolicy = SchedulingPolicy.Priority);

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 4).TrimEnd('}') + ",\"priority\":" + value + "}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertError(body, "BadRequestError", 400);
    }

    [Fact]
    public async Task GetOnChatCompletions_Returns405()
    {
        await using var worker = await TestWorker.StartAsync();

        using var response = await worker.Client.GetAsync(TestWorker.ChatPath);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
    }

    [Fact]
    public async Task QueueFull_Returns503NestedServiceUnavailableError()
    {
        await using var worker = await TestWorker.StartAsync(o => { o.MaxNumSeqs = 1; o.MaxNumWaiting = 0; o.SpeedFactor = 1; });
        using var holder = await worker.OpenStreamAsync(TestWorker.ChatPath, TestWorker.Chat("hold the slot", maxTokens: 2000, stream: true, ignoreEos: true));
        Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Running == 1), $"running={worker.Stats.Running}");

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("one too many"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        AssertError(body, "ServiceUnavailableError", 503);
        Assert.Equal(1, worker.Stats.QueueFull);
        Assert.Contains("\"queue_full\":1", await worker.GetStringAsync("/sim/stats"), StringComparison.Ordinal);
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
