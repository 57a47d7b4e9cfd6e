using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using AotProxy.Accounting;
using AotProxy.Forwarding;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Forwarding;

// What a response is accounted at when it ends early: the Forwarder stops calling Process when
// the upstream breaks, the client goes away or the activity timeout fires, and takes
// UsageOrEstimate of what was relayed up to then.
public class RelayTests
{
    private const long PromptEstimate = 42;

    [Theory]
    [InlineData("openai/chat_stream_usage.sse")]
    [InlineData("openai/chat_stream.sse")]
    [InlineData("openai/openai_ref_chat_stream_usage.sse")]
    public void StreamCutAtEveryByte_IsEstimatedFromTheContentChunksBeforeTheCut_UntilTheUsageChunkArrived(string fixture)
    {
        var bytes = Fixtures.Bytes(fixture);
        var text = Encoding.UTF8.GetString(bytes); // the fixtures are ASCII: char and byte offsets agree
        Assert.Equal(bytes.Length, text.Length);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var (contentChunks, reported) = Expected(text[..cut]);
            var usage = RelayPrefix(RelayMode.Sse, bytes, cut, isFinal: false);
            Assert.Equal(reported ?? Usage.Estimate(PromptEstimate, contentChunks), usage);
        }
    }

    [Fact]
    public void StreamCutAtEveryEventBoundary_CountsOneCompletionTokenPerContentChunk()
    {
        // The same property at the boundaries alone, spelled out for the vLLM capture without usage:
        // role chunk, "Okay", ".", " Sure", ".", finish chunk, [DONE].
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        long[] expected = [0, 0, 1, 2, 3, 4, 4, 4];
        var boundaries = Boundaries(bytes);
        Assert.Equal(expected.Length, boundaries.Count);
        for (var i = 0; i < boundaries.Count; i++)
        {
            Assert.Equal(Usage.Estimate(PromptEstimate, expected[i]), RelayPrefix(RelayMode.Sse, bytes, boundaries[i], isFinal: false));
        }
    }

    [Fact]
    public void StreamThatEndsCleanlyWithoutUsage_IsEstimatedToo()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        var usage = RelayPrefix(RelayMode.Sse, bytes, bytes.Length, isFinal: true);
        Assert.Equal(new Usage(PromptEstimate, 4, Estimated: true), usage);
    }

    [Theory]
    [InlineData("openai/chat_nonstream.json")]
    [InlineData("openai/embeddings.json")]
    public void JsonBodyCutAtEveryByte_IsEstimatedWithNoCompletion_UntilItsUsageIsRead(string fixture)
    {
        var bytes = Fixtures.Bytes(fixture);
        using var document = JsonDocument.Parse(bytes);
        var usage = document.RootElement.GetProperty("usage");
        var exact = new Usage(usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());
        var usageEnd = Encoding.UTF8.GetString(bytes).IndexOf("\"usage\":", StringComparison.Ordinal);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var relayed = RelayPrefix(RelayMode.JsonWithUsage, bytes, cut, isFinal: cut == bytes.Length);
            if (cut <= usageEnd)
            {
                Assert.Equal(Usage.Estimate(PromptEstimate, 0), relayed);
            }
            else
            {
                Assert.True(relayed == exact || relayed == Usage.Estimate(PromptEstimate, 0), $"cut at {cut}: {relayed}");
            }
        }

        Assert.Equal(exact, RelayPrefix(RelayMode.JsonWithUsage, bytes, bytes.Length, isFinal: true));
    }

    [Fact]
    public void RawBody_AnUpstreamErrorAnswer_IsNotAccounted()
    {
        var bytes = Fixtures.Bytes("openai/error_vllm_nested.json");
        Assert.Null(RelayPrefix(RelayMode.Raw, bytes, bytes.Length, isFinal: true));
    }

    // The first `cut` bytes arrive in two reads (split in the middle, with what Process left over
    // kept, as the pipe keeps it); then the upstream is gone (no final read) or, with isFinal, done.
    private static Usage? RelayPrefix(RelayMode mode, byte[] bytes, int cut, bool isFinal)
    {
        var relay = new Relay(mode, stripUsage: true);
        var client = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var pending = Array.Empty<byte>();
        var half = cut / 2;
        foreach (var (chunk, last) in new[] { (bytes[..half], false), (bytes[half..cut], isFinal) })
        {
            var joined = pending.Concat(chunk).ToArray();
            var sequence = Segments.Split(joined, pending.Length is > 0 and var p && p < joined.Length ? [p] : []);
            var consumed = relay.Process(sequence, last, client.Writer, out _);
            pending = sequence.Slice(consumed).ToArray();
        }

        return relay.UsageOrEstimate(PromptEstimate);
    }

    // Independently of the scanner: the complete events of a prefix, read with a DOM parser.
    private static (long ContentChunks, Usage? Reported) Expected(string prefix)
    {
        long content = 0;
        Usage? reported = null;
        var end = prefix.LastIndexOf("\n\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return (0, null);
        }

        foreach (var sseEvent in prefix[..end].Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var data = sseEvent["data: ".Length..];
            if (data == "[DONE]")
            {
                continue;
            }

            using var chunk = JsonDocument.Parse(data);
            var root = chunk.RootElement;
            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                var details = usage.TryGetProperty("completion_tokens_details", out var d) ? d.GetProperty("reasoning_tokens").GetInt64() : 0;
                reported = new Usage(usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64(), 0, details);
            }
            else if (root.GetProperty("choices").EnumerateArray().Any(c => c.GetProperty("delta").TryGetProperty("content", out var t) && t.GetString() is { Length: > 0 }))
            {
                content++;
            }
        }

        return (content, reported);
    }

    private static List<int> Boundaries(byte[] bytes)
    {
        var text = Encoding.UTF8.GetString(bytes);
        var boundaries = new List<int> { 0 };
        for (var i = text.IndexOf("\n\n", StringComparison.Ordinal); i >= 0; i = text.IndexOf("\n\n", i + 2, StringComparison.Ordinal))
        {
            boundaries.Add(i + 2);
        }

        return boundaries;
    }
}
