using System.Net;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

public sealed class OpenAiShapeTests
{
    [Fact]
    public async Task ChatCompletions_NonStream_FieldOrderMatchesVllmFixture()
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("Write a short introduction to large language models.", maxTokens: 20));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(JsonShape.Paths(Fixtures.Text("openai/chat_nonstream.json")), JsonShape.Paths(body));
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        Assert.Equal("chat.completion", root.GetProperty("object").GetString());
        Assert.Equal("meta-llama/Llama-3.1-8B-Instruct", root.GetProperty("model").GetString());
        Assert.Equal("assistant", root.GetProperty("choices")[0].GetProperty("message").GetProperty("role").GetString());
        var usage = root.GetProperty("usage");
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(JsonValueKind.Null, usage.GetProperty("prompt_tokens_details").ValueKind);
    }

    [Fact]
    public async Task Completions_NonStream_FieldOrderMatchesVllmFixture()
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync(TestWorker.CompletionsPath, """{"model":"meta-llama/Llama-3.1-8B-Instruct","prompt":"Hello, my name is","max_tokens":5}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(JsonShape.Paths(Fixtures.Text("openai/completions.json")), JsonShape.Paths(body));
        using var json = JsonDocument.Parse(body);
        Assert.Equal("text_completion", json.RootElement.GetProperty("object").GetString());
        Assert.StartsWith("cmpl-", json.RootElement.GetProperty("id").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChatCompletions_IgnoreEos_GeneratesExactlyMaxTokensWithLength()
    {
        await using var worker = await TestWorker.StartAsync();

        var (_, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("Count to ten.", maxTokens: 7, ignoreEos: true));

        using var json = JsonDocument.Parse(body);
        Assert.Equal(7, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", json.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task ChatCompletions_MaxCompletionTokens_TakesPrecedenceOverMaxTokens()
    {
        await using var worker = await TestWorker.StartAsync();

        var (_, body) = await worker.SendAsync(TestWorker.ChatPath, """{"messages":[{"role":"user","content":"hi"}],"max_tokens":9,"max_completion_tokens":5,"ignore_eos":true}""");

        using var json = JsonDocument.Parse(body);
        Assert.Equal(5, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task ChatCompletions_NoMaxTokens_UsesDefaultMaxTokens()
    {
        await using var worker = await TestWorker.StartAsync(o => o.DefaultMaxTokens = 11);

        var (_, body) = await worker.SendAsync(TestWorker.ChatPath, """{"messages":[{"role":"user","content":"hi"}],"ignore_eos":true}""");

        using var json = JsonDocument.Parse(body);
        Assert.Equal(11, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task ChatCompletions_ManyPrompts_ProduceBothFinishReasons()
    {
        await using var worker = await TestWorker.StartAsync();
        var reasons = new Dictionary<string, List<int>>();

        for (var i = 0; i < 24; i++)
        {
            var (_, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat($"Prompt number {i}", maxTokens: 16));
            using var json = JsonDocument.Parse(body);
            var reason = json.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString()!;
            var tokens = json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
            (reasons.TryGetValue(reason, out var list) ? list : reasons[reason] = []).Add(tokens);
        }

        Assert.Equal(["length", "stop"], reasons.Keys.Order());
        Assert.All(reasons["length"], t => Assert.Equal(16, t));
        Assert.All(reasons["stop"], t => Assert.InRange(t, 2, 15));
        // The worker counts a request once its last byte is flushed, which may be after the client read it.
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Completed == 24), $"completed={worker.Stats.Completed}");
        Assert.Equal(reasons["stop"].Count, worker.Stats.FinishedStop);
    }

    [Fact]
    public async Task Embeddings_Post_MatchesVllmFixtureShapeWithUnitVectors()
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync("/v1/embeddings", """{"model":"meta-llama/Llama-3.1-8B-Instruct","input":["first text","second text"]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var fixturePaths = JsonShape.Paths(Fixtures.Text("openai/embeddings.json"));
        Assert.Equal(fixturePaths.Distinct(), JsonShape.Paths(body).Distinct());
        using var json = JsonDocument.Parse(body);
        var data = json.RootElement.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.Equal(1, data[1].GetProperty("index").GetInt32());
        var first = data[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var second = data[1].GetProperty("embedding").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.InRange(Math.Sqrt(first.Sum(v => v * v)), 0.99, 1.01);
        Assert.NotEqual(first, second);
        Assert.StartsWith("embd-", json.RootElement.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Embeddings_SameInput_SameVector()
    {
        await using var worker = await TestWorker.StartAsync();

        var (_, a) = await worker.SendAsync("/v1/embeddings", """{"input":"the same text"}""");
        var (_, b) = await worker.SendAsync("/v1/embeddings", """{"input":["the same text"]}""");

        using var ja = JsonDocument.Parse(a);
        using var jb = JsonDocument.Parse(b);
        Assert.Equal(ja.RootElement.GetProperty("data")[0].GetProperty("embedding").GetRawText(), jb.RootElement.GetProperty("data")[0].GetProperty("embedding").GetRawText());
    }

    [Fact]
    public async Task Models_Get_MatchesVllmFixtureShape()
    {
        await using var worker = await TestWorker.StartAsync(o => o.Model = "Qwen/Qwen2.5-Coder-1.5B-Instruct");

        var body = await worker.GetStringAsync("/v1/models");

        Assert.Equal(JsonShape.Paths(Fixtures.Text("openai/models.json")).Distinct(), JsonShape.Paths(body));
        using var json = JsonDocument.Parse(body);
        var model = json.RootElement.GetProperty("data")[0];
        Assert.Equal("Qwen/Qwen2.5-Coder-1.5B-Instruct", model.GetProperty("id").GetString());
        Assert.Equal("vllm", model.GetProperty("owned_by").GetString());
        Assert.Equal(131072, model.GetProperty("max_model_len").GetInt32());
    }

    [Fact]
    public async Task Health_Get_Returns200WithEmptyBody()
    {
        await using var worker = await TestWorker.StartAsync();

        using var response = await worker.Client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }
}
