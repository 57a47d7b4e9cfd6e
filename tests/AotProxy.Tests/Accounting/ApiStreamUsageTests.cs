using System.Buffers;
using System.Text;
using AotProxy.Accounting;
using AotProxy.Forwarding;
using AotProxy.Http;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Accounting;

// The Responses API's and the Messages API's streams and bodies (tests/fixtures/vllm-api): the
// relay passes them through byte for byte wherever a read splits them, counts one content chunk per
// text delta, and reads the usage each API reports its own way.
public class ApiStreamUsageTests
{
    [Theory]
    [InlineData("responses_stream.sse", "Responses", 12, 7, 0, 7)]
    [InlineData("messages_stream.sse", "Messages", 12, 7, 0, 7)]
    [InlineData("anthropic_ref_messages_stream.sse", "Messages", 33, 15, 8, 2)] // 25 input + 8 cache reads; output only in message_delta
    public void Process_EverySplitPoint_PassesTheStreamThroughAndReadsItsUsage(string fixture, string endpoint, long prompt, long completion, long cached, long chunks)
    {
        var bytes = Fixtures.ApiBytes(fixture);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var filter = new SseUsageFilter(stripUsage: true, endpoint: Enum.Parse<EndpointKind>(endpoint));
            var output = Relay(ref filter, bytes, cut);
            Assert.Equal(bytes, output);
            Assert.Equal(new Usage(prompt, completion, cached), filter.Usage);
            Assert.Equal(chunks, filter.ContentChunks);
        }
    }

    // vLLM sends cached_tokens 0 and reasoning_tokens 0 without a reasoning parser: the fixture's
    // final event edited to counts that can be told apart.
    [Fact]
    public void Process_ResponsesCompleted_ReadsCachedAndReasoningTokens()
    {
        var text = Encoding.UTF8.GetString(Fixtures.ApiBytes("responses_stream.sse"))
            .Replace("\"input_tokens_details\":{\"cached_tokens\":0}", "\"input_tokens_details\":{\"cached_tokens\":4}", StringComparison.Ordinal)
            .Replace("\"output_tokens_details\":{\"reasoning_tokens\":0}", "\"output_tokens_details\":{\"reasoning_tokens\":5}", StringComparison.Ordinal);
        var filter = new SseUsageFilter(stripUsage: false, endpoint: EndpointKind.Responses);

        Relay(ref filter, Encoding.UTF8.GetBytes(text), 100);

        Assert.Equal(new Usage(12, 7, 4, 5), filter.Usage);
    }

    [Fact]
    public void Process_ResponsesStreamCutBeforeCompleted_HasNoUsageAndEstimatesFromItsDeltas()
    {
        var text = Encoding.UTF8.GetString(Fixtures.ApiBytes("responses_stream.sse"));
        var cut = Encoding.UTF8.GetBytes(text[..text.IndexOf("event: response.output_text.done", StringComparison.Ordinal)]);
        var relay = new Relay(RelayMode.Sse, stripUsage: false, endpoint: EndpointKind.Responses);
        relay.Process(new ReadOnlySequence<byte>(cut), isFinal: true, System.IO.Pipelines.PipeWriter.Create(Stream.Null), out var written);

        Assert.Equal(cut.Length, written);
        Assert.Null(relay.Usage);
        Assert.Equal(Usage.Estimate(30, 7), relay.UsageOrEstimate(30));
    }

    // Cut between message_start and message_delta (a budget cutoff, an idle timeout): not
    // message_start's partial usage, but an estimate (the prompt estimate and the deltas relayed).
    [Fact]
    public void Process_MessagesStreamCutBeforeMessageDelta_CountsTheReportedPromptAndEstimatesTheOutput()
    {
        var text = Encoding.UTF8.GetString(Fixtures.ApiBytes("messages_stream.sse"));
        var cut = Encoding.UTF8.GetBytes(text[..text.IndexOf("event: content_block_stop", StringComparison.Ordinal)]);
        var relay = new Relay(RelayMode.Sse, stripUsage: false, endpoint: EndpointKind.Messages);

        relay.Process(new ReadOnlySequence<byte>(cut), isFinal: true, System.IO.Pipelines.PipeWriter.Create(Stream.Null), out _);

        Assert.Null(relay.Usage);
        Assert.Equal(Usage.Estimate(30, 7), relay.UsageOrEstimate(30));
    }

    [Theory]
    [InlineData("""{"type":"response.output_text.delta","sequence_number":4,"delta":"Hi"}""", "Content")]
    [InlineData("""{"delta":"Hi","type":"response.reasoning_text.delta"}""", "Content")] // order does not matter
    [InlineData("""{"type":"response.output_text.delta","delta":""}""", "Other")]
    [InlineData("""{"type":"response.function_call_arguments.delta","delta":"{"}""", "Other")]
    [InlineData("""{"type":"response.created","response":{"id":"r","usage":null}}""", "Other")]
    [InlineData("""{"type":"response.completed","response":{"usage":{"input_tokens":1,"output_tokens":2}}}""", "WithUsage")]
    [InlineData("""{"type":"response.incomplete","response":{"usage":{"input_tokens":1,"output_tokens":2}}}""", "WithUsage")]
    [InlineData("""{"type":"error","code":"x","message":"y"}""", "Other")]
    public void Read_Responses_ClassifiesEvents(string json, string kind) =>
        AssertKind(json, EndpointKind.Responses, Enum.Parse<StreamChunkKind>(kind));

    [Theory]
    [InlineData("""{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}""", "Content")]
    [InlineData("""{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}""", "Content")]
    [InlineData("""{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a"}}""", "Content")]
    [InlineData("""{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}""", "Other")]
    [InlineData("""{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}""", "Other")]
    [InlineData("""{"type":"ping"}""", "Other")]
    [InlineData("""{"type":"message_start","message":{"id":"m","usage":{"input_tokens":3,"output_tokens":0}}}""", "PromptUsage")]
    [InlineData("""{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}""", "UsagePart")]
    [InlineData("""{"type":"message_stop"}""", "Other")]
    [InlineData("""{"type":"error","error":{"type":"overloaded_error","message":"x"}}""", "Other")]
    public void Read_Messages_ClassifiesEvents(string json, string kind) =>
        AssertKind(json, EndpointKind.Messages, Enum.Parse<StreamChunkKind>(kind));

    [Theory]
    [InlineData("responses_nonstream.json", 12, 7)]
    [InlineData("messages_nonstream.json", 12, 7)]
    public void Feed_EverySplitPoint_FindsTheBodysUsage(string fixture, long prompt, long completion)
    {
        var bytes = Fixtures.ApiBytes(fixture);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var scanner = TwoReads.Scan(bytes, cut);
            Assert.True(scanner.Found, $"cut at {cut}");
            Assert.Equal(new Usage(prompt, completion), scanner.Usage);
        }
    }

    // Anthropic counts cache reads and writes beside input_tokens: all three are prompt.
    [Fact]
    public void Feed_AnthropicCacheFields_AreAddedToThePrompt()
    {
        var body = """{"id":"msg_1","type":"message","usage":{"input_tokens":10,"cache_creation_input_tokens":3,"cache_read_input_tokens":20,"output_tokens":5}}"""u8.ToArray();
        var scanner = default(UsageJsonScanner);

        scanner.Feed(new ReadOnlySequence<byte>(body), isFinalBlock: true);

        Assert.Equal(new Usage(33, 5, CachedPromptTokens: 20), scanner.Usage);
    }

    private static void AssertKind(string json, EndpointKind endpoint, StreamChunkKind expected)
    {
        var sseEvent = Encoding.UTF8.GetBytes("event: x\ndata: " + json + "\n\n");
        for (var cut = 1; cut < sseEvent.Length; cut++)
        {
            Assert.Equal(expected, StreamChunkReader.Read(Segments.Split(sseEvent, cut), out _, endpoint));
        }
    }

    private static byte[] Relay(ref SseUsageFilter filter, byte[] bytes, int cut)
    {
        var output = new ArrayBufferWriter<byte>();
        var relayed = filter;
        Assert.Empty(TwoReads.Feed(bytes, cut, (arrived, isFinal) => relayed.Process(arrived, output, isFinal, out _)));
        filter = relayed;
        return output.WrittenSpan.ToArray();
    }
}
