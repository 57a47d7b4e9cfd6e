using System.Buffers;
using System.Text;
using AotProxy.Accounting;
using AotProxy.Forwarding;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Forwarding;

public class SseUsageFilterTests
{
    [Theory]
    [InlineData("openai/chat_stream.sse")]
    [InlineData("openai/chat_stream_usage.sse")]
    [InlineData("openai/openai_ref_chat_stream_usage.sse")]
    public void Process_EverySplitPoint_PassesTheStreamThroughUnchanged(string fixture)
    {
        var bytes = Fixtures.Bytes(fixture);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var (output, _) = Relay(bytes, cut, stripUsage: false);
            Assert.Equal(bytes, output);
        }
    }

    [Fact]
    public void Process_EverySplitPoint_StripsOnlyTheUsageOnlyChunkAndReadsUsage()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream_usage.sse");
        var text = Encoding.UTF8.GetString(bytes);
        var usageEventStart = text.IndexOf("data: {\"id\":\"chatcmpl-ba1b4314210adc3b\",\"object\":\"chat.completion.chunk\",\"created\":1764763435,\"model\":\"deepseek-ai/DeepSeek-V3.1\",\"choices\":[],", StringComparison.Ordinal);
        var usageEventEnd = text.IndexOf("\n\n", usageEventStart, StringComparison.Ordinal) + 2;
        var expected = Encoding.UTF8.GetBytes(text[..usageEventStart] + text[usageEventEnd..]);

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var (output, usage) = Relay(bytes, cut, stripUsage: true);
            Assert.Equal(expected, output);
            Assert.Equal(new Usage(13, 3), usage);
        }
    }

    [Fact]
    public void Process_OpenAiStyleUsageNullOnEveryChunk_ReadsTheFinalUsage()
    {
        var (output, usage) = Relay(Fixtures.Bytes("openai/openai_ref_chat_stream_usage.sse"), 0, stripUsage: false);
        Assert.NotEmpty(output);
        Assert.Equal(new Usage(12, 100), usage);
    }

    [Fact]
    public void Process_StreamWithoutUsage_HasNoUsage()
    {
        var (_, usage) = Relay(Fixtures.Bytes("openai/chat_stream.sse"), 0, stripUsage: true);
        Assert.Null(usage);
    }

    [Fact]
    public void Process_IncompleteEvent_IsHeldUntilItsBlankLineArrives()
    {
        var filter = new SseUsageFilter(stripUsage: false);
        var output = new ArrayBufferWriter<byte>();
        var partial = "data: {\"a\":1}\n\ndata: {\"b\""u8.ToArray();

        var consumed = filter.Process(new ReadOnlySequence<byte>(partial), output, isFinal: false, out var written);

        Assert.Equal("data: {\"a\":1}\n\n", Encoding.UTF8.GetString(output.WrittenSpan));
        Assert.Equal(written, output.WrittenCount);
        Assert.Equal(15, new ReadOnlySequence<byte>(partial).Slice(0, consumed).Length);
    }

    [Fact]
    public void Process_CrLfEvents_AreRecognised()
    {
        var stream = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":5}}\r\n\r\ndata: [DONE]\r\n\r\n"u8.ToArray();
        var (output, usage) = Relay(stream, 7, stripUsage: true);
        Assert.Equal("data: [DONE]\r\n\r\n", Encoding.UTF8.GetString(output));
        Assert.Equal(new Usage(2, 5), usage);
    }

    [Fact]
    public void Process_GarbageData_PassesThroughWithoutUsage()
    {
        var stream = "data: {\"usage\": not json\n\n: comment\n\ndata: [DONE]\n\n"u8.ToArray();
        var (output, usage) = Relay(stream, 3, stripUsage: true);
        Assert.Equal(stream, output);
        Assert.Null(usage);
    }

    // Feeds the bytes as two arrivals split at `cut`, keeping what Process leaves unconsumed as a
    // pipe would, with the pending buffer itself split into segments at the arrival boundary.
    private static (byte[] Output, Usage? Usage) Relay(byte[] bytes, int cut, bool stripUsage)
    {
        var filter = new SseUsageFilter(stripUsage);
        var output = new ArrayBufferWriter<byte>();
        var pending = Array.Empty<byte>();
        foreach (var (chunk, isFinal) in new[] { (bytes[..cut], false), (bytes[cut..], true) })
        {
            var joined = pending.Concat(chunk).ToArray();
            var sequence = Segments.Split(joined, pending.Length is > 0 and var p && p < joined.Length ? [p] : []);
            var consumed = filter.Process(sequence, output, isFinal, out var written);
            Assert.True(written >= 0);
            pending = sequence.Slice(consumed).ToArray();
        }

        Assert.Empty(pending);
        return (output.WrittenSpan.ToArray(), filter.Usage);
    }
}
