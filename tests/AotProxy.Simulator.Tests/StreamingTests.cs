using System.Net;
using System.Text;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

public sealed class StreamingTests
{
    [Fact]
    public async Task ChatStream_WithoutIncludeUsage_MatchesFixtureStructureAndHasNoUsage()
    {
        await using var worker = await TestWorker.StartAsync();
        var fixture = SseBody.DataPayloads(Fixtures.Text("openai/chat_stream.sse"));

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("Say something.", maxTokens: 5, stream: true, ignoreEos: true));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = SseBody.DataPayloads(body);
        Assert.Equal(1 + 5 + 1, events.Count);
        Assert.Equal(JsonShape.Paths(fixture[0]), JsonShape.Paths(events[0]));
        foreach (var token in events.Skip(1).Take(4))
        {
            Assert.Equal(JsonShape.Paths(fixture[1]), JsonShape.Paths(token));
        }

        Assert.Equal(JsonShape.Paths(fixture[^2]), JsonShape.Paths(events[^2]));
        Assert.Equal("[DONE]", events[^1]);
        Assert.DoesNotContain("usage", body, StringComparison.Ordinal);
        using var role = JsonDocument.Parse(events[0]);
        var delta = role.RootElement.GetProperty("choices")[0].GetProperty("delta");
        Assert.Equal("assistant", delta.GetProperty("role").GetString());
        Assert.Equal(string.Empty, delta.GetProperty("content").GetString());
        using var last = JsonDocument.Parse(events[^2]);
        Assert.Equal("length", last.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task ChatStream_WithIncludeUsage_EndsWithEmptyChoicesUsageChunk()
    {
        await using var worker = await TestWorker.StartAsync();
        var fixture = SseBody.DataPayloads(Fixtures.Text("openai/chat_stream_usage.sse"));

        var (_, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("Say something else.", maxTokens: 12, stream: true, includeUsage: true));

        var events = SseBody.DataPayloads(body);
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(JsonShape.Paths(fixture[^2]), JsonShape.Paths(events[^2]));
        using var usageChunk = JsonDocument.Parse(events[^2]);
        Assert.Equal(0, usageChunk.RootElement.GetProperty("choices").GetArrayLength());
        var usage = usageChunk.RootElement.GetProperty("usage");
        var tokenChunks = events.Count - 3;
        Assert.Equal(tokenChunks, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + tokenChunks, usage.GetProperty("total_tokens").GetInt32());
        Assert.Single(events, e => e.Contains("\"usage\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ChatStream_EndedByStop_FinalChunkHasEmptyContentLikeVllm()
    {
        await using var worker = await TestWorker.StartAsync();

        // Deterministic output: find a prompt whose plan ends with end-of-sequence.
        for (var i = 0; i < 20; i++)
        {
            var (_, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat($"stop probe {i}", maxTokens: 12, stream: true));
            var events = SseBody.DataPayloads(body);
            using var last = JsonDocument.Parse(events[^2]);
            var choice = last.RootElement.GetProperty("choices")[0];
            if (choice.GetProperty("finish_reason").GetString() == "stop")
            {
                Assert.Equal(string.Empty, choice.GetProperty("delta").GetProperty("content").GetString());
                Assert.Equal(JsonValueKind.Null, choice.GetProperty("stop_reason").ValueKind);
                return;
            }
        }

        Assert.Fail("No prompt out of 20 ended with finish_reason stop.");
    }

    [Fact]
    public async Task ChatStream_ConcatenatedDeltas_EqualNonStreamContent()
    {
        await using var worker = await TestWorker.StartAsync();
        const string prompt = "Explain continuous batching.";

        var (_, streamed) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat(prompt, maxTokens: 40, stream: true));
        var (_, whole) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat(prompt, maxTokens: 40));

        var text = new StringBuilder();
        foreach (var e in SseBody.DataPayloads(streamed).Skip(1).SkipLast(1))
        {
            using var chunk = JsonDocument.Parse(e);
            text.Append(chunk.RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        }

        using var json = JsonDocument.Parse(whole);
        Assert.Equal(json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), text.ToString());
    }

    [Fact]
    public async Task CompletionsStream_UsesTextCompletionChunksAndUsageChunk()
    {
        await using var worker = await TestWorker.StartAsync();

        var (_, body) = await worker.SendAsync(TestWorker.CompletionsPath, """{"prompt":"Once upon a time","max_tokens":6,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}""");

        var events = SseBody.DataPayloads(body);
        Assert.Equal(6 + 2, events.Count);
        Assert.Equal("[DONE]", events[^1]);
        foreach (var e in events.Take(6))
        {
            using var chunk = JsonDocument.Parse(e);
            Assert.Equal("text_completion", chunk.RootElement.GetProperty("object").GetString());
            Assert.Equal(JsonValueKind.String, chunk.RootElement.GetProperty("choices")[0].GetProperty("text").ValueKind);
            Assert.Equal(JsonValueKind.Null, chunk.RootElement.GetProperty("usage").ValueKind);
        }

        using var final = JsonDocument.Parse(events[5]);
        Assert.Equal("length", final.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        using var usage = JsonDocument.Parse(events[6]);
        Assert.Equal(6, usage.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(0, usage.RootElement.GetProperty("choices").GetArrayLength());
    }
}
