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
        Assert.Equal(new Usage(12, 100, CachedPromptTokens: 0, ReasoningTokens: 100), usage);
    }

    // OpenAI's capture has cached_tokens 0; the same chunk with 5 cached tokens (the fixture's text
    // edited) reads both details, wherever the stream is split.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Process_EverySplitPoint_ReadsCachedAndReasoningTokens(bool editCached)
    {
        var text = Fixtures.Text("openai/openai_ref_chat_stream_usage.sse");
        Assert.Contains("\"cached_tokens\":0", text, StringComparison.Ordinal);
        var bytes = Encoding.UTF8.GetBytes(editCached ? text.Replace("\"cached_tokens\":0", "\"cached_tokens\":5", StringComparison.Ordinal) : text);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var (output, usage) = Relay(bytes, cut, stripUsage: false);
            Assert.Equal(bytes, output);
            Assert.Equal(new Usage(12, 100, editCached ? 5 : 0, 100), usage);
        }
    }

    [Theory]
    [InlineData("openai/chat_stream.sse", 4)]               // "Okay" "." " Sure" ".": not the role chunk or the finish chunk (both "")
    [InlineData("openai/chat_stream_usage.sse", 2)]
    [InlineData("openai/openai_ref_chat_stream_usage.sse", 0)] // a reasoning model: the text never reached the stream
    public void Process_EverySplitPoint_CountsTheContentChunks(string fixture, long expected)
    {
        var bytes = Fixtures.Bytes(fixture);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var filter = new SseUsageFilter(stripUsage: false);
            Relay(ref filter, bytes, cut);
            Assert.Equal(expected, filter.ContentChunks);
        }
    }

    [Theory]
    [InlineData("{\"choices\":[{\"index\":0,\"text\":\" Paris\",\"logprobs\":null,\"finish_reason\":null}]}", "Content")]            // completions
    [InlineData("{\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}]}", "Other")]
    [InlineData("{\"choices\":[{\"delta\":{\"content\":null,\"reasoning_content\":\"Hmm\"}}]}", "Content")]
    [InlineData("{\"choices\":[{\"delta\":{\"reasoning\":\"Hmm\"}}]}", "Content")]
    [InlineData("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"\"}}]}}]}", "Content")]
    [InlineData("{\"choices\":[{\"delta\":{\"tool_calls\":[]},\"logprobs\":{\"content\":[{\"token\":\"a\"}]}}]}", "Other")]
    [InlineData("{\"choices\":[{\"delta\":{\"content\":\"\\\"\"}}],\"usage\":null}", "Content")]                                   // an escaped quote is text
    [InlineData("{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}", "WithUsage")] // continuous usage: the usage counts
    public void Read_ClassifiesContentChunks(string json, string kind)
    {
        var expected = Enum.Parse<StreamChunkKind>(kind);
        var sseEvent = Encoding.UTF8.GetBytes("data: " + json + "\n\n");
        for (var cut = 1; cut < sseEvent.Length; cut++)
        {
            Assert.Equal(expected, StreamChunkReader.Read(Segments.Split(sseEvent, cut), out _));
        }
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
    public void Process_StreamThatEndsInsideAnEvent_PassesTheUnfinishedEventThroughAtTheEnd()
    {
        // The worker broke off mid-event: what did arrive still reaches the client (and is
        // counted as written), wherever the reads were split.
        var stream = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"del"u8.ToArray();
        for (var cut = 0; cut <= stream.Length; cut++)
        {
            var (output, usage) = Relay(stream, cut, stripUsage: true);
            Assert.Equal(stream, output);
            Assert.Null(usage);
        }
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
        var output = Relay(ref filter, bytes, cut);
        return (output, filter.Usage);
    }

    private static byte[] Relay(ref SseUsageFilter filter, byte[] bytes, int cut)
    {
        var output = new ArrayBufferWriter<byte>();
        var pending = Array.Empty<byte>();
        foreach (var (chunk, isFinal) in new[] { (bytes[..cut], false), (bytes[cut..], true) })
        {
            var joined = pending.Concat(chunk).ToArray();
            var sequence = Segments.Split(joined, pending.Length is > 0 and var p && p < joined.Length ? [p] : []);
            var before = output.WrittenCount;
            var consumed = filter.Process(sequence, output, isFinal, out var written);
            Assert.Equal(output.WrittenCount - before, written);
            pending = sequence.Slice(consumed).ToArray();
        }

        Assert.Empty(pending);
        return output.WrittenSpan.ToArray();
    }
}
