using System.Text.Json;

namespace AotProxy.Simulator.Tests;

public sealed class DeterminismTests
{
    private static readonly DateTimeOffset Pinned = new(2025, 3, 14, 15, 9, 26, TimeSpan.Zero);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Chat_SameRequestIdAndFixedTime_ByteIdenticalAcrossWorkers(bool stream)
    {
        await using var a = await TestWorker.StartAsync(o => o.TimeProvider = new FixedTimeProvider(Pinned));
        await using var b = await TestWorker.StartAsync(o => o.TimeProvider = new FixedTimeProvider(Pinned));
        var body = TestWorker.Chat("Tell me about the sea, with an \\\"escaped\\\" quote and ünïcode.", maxTokens: 48, stream: stream, includeUsage: stream);

        var first = await a.SendForBytesAsync(TestWorker.ChatPath, body, "req-42");
        var second = await b.SendForBytesAsync(TestWorker.ChatPath, body, "req-42");
        var again = await a.SendForBytesAsync(TestWorker.ChatPath, body, "req-42");

        Assert.Equal(first, second);
        Assert.Equal(first, again);
        var text = System.Text.Encoding.UTF8.GetString(first);
        Assert.Contains("\"id\":\"chatcmpl-req-42\"", text, StringComparison.Ordinal);
        Assert.Contains($"\"created\":{Pinned.ToUnixTimeSeconds()}", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Completions_SameRequestIdAndFixedTime_ByteIdentical()
    {
        await using var worker = await TestWorker.StartAsync(o => o.TimeProvider = new FixedTimeProvider(Pinned));
        const string body = """{"prompt":"The capital of France is","max_tokens":20}""";

        var first = await worker.SendForBytesAsync(TestWorker.CompletionsPath, body, "abc");
        var second = await worker.SendForBytesAsync(TestWorker.CompletionsPath, body, "abc");

        Assert.Equal(first, second);
        Assert.Contains("\"id\":\"cmpl-abc\"", System.Text.Encoding.UTF8.GetString(first), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_DifferentPrompts_DifferentText()
    {
        await using var worker = await TestWorker.StartAsync();

        var (_, a) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("first prompt", maxTokens: 30, ignoreEos: true));
        var (_, b) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("second prompt", maxTokens: 30, ignoreEos: true));

        Assert.NotEqual(Content(a), Content(b));
    }

    [Fact]
    public async Task Chat_NoRequestIdHeader_RandomSixteenHexId()
    {
        await using var worker = await TestWorker.StartAsync();

        var (_, a) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 2));
        var (_, b) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 2));

        var idA = Id(a);
        Assert.Matches("^chatcmpl-[0-9a-f]{16}$", idA);
        Assert.NotEqual(idA, Id(b));
        Assert.Equal(Content(a), Content(b));
    }

    private static string Content(string body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    private static string Id(string body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("id").GetString()!;
    }
}
