using System.Buffers;
using System.Text;
using AotProxy.Accounting;
using AotProxy.Forwarding;
using AotProxy.Tests.Support;
using Xunit.Abstractions;

namespace AotProxy.Tests.Accounting;

// The SSE scanner and the usage readers it feeds, under the bounded mutation fuzzer (issue 14),
// seeded with the captured streams (LF and CRLF) and JSON bodies. Nothing a worker sends may
// throw out of them: a malformed chunk is passed on as it is and counts as "Other". Events and
// usage must not depend on where the stream was cut, nor on being fed the way the relay feeds
// them (what was held back, plus the next read).
public sealed class SseEventScannerFuzzTests(ITestOutputHelper output)
{
    private static readonly IReadOnlyList<byte[]> StreamSeeds = BuildStreamSeeds();

    private static readonly IReadOnlyList<byte[]> JsonSeeds =
        [.. new[] { "openai/chat_nonstream.json", "openai/chat_nonstream_v0.10.json", "openai/completions.json", "openai/embeddings.json", "openai/error_vllm.json" }.Select(Fixtures.Bytes)];

    [Fact]
    public void TryReadEvent_FuzzedStreams_SplitsTheSameEventsWhereverTheStreamIsCut()
    {
        var inputs = Fuzz.Run(StreamSeeds, input =>
        {
            var random = FuzzSplits.RandomFor(input);
            var whole = Events(new ReadOnlySequence<byte>(input));
            Assert.Equal(whole, Events(FuzzSplits.RandomSegments(input, random)));
            foreach (var length in FuzzSplits.PrefixLengths(input.Length, random))
            {
                // A prefix holds the events that end inside it, and no other.
                var prefix = Events(new ReadOnlySequence<byte>(input, 0, length));
                Assert.Equal(whole.TakeWhile(e => e.End <= length), prefix);
            }
        });

        output.WriteLine($"{inputs} inputs");

        Assert.True(inputs > StreamSeeds.Count, $"only {inputs} inputs in the budget");
    }

    [Fact]
    public void SseUsageFilter_FuzzedStreams_RelaysTheSameBytesAndUsageHoweverTheyArrive()
    {
        var inputs = Fuzz.Run(StreamSeeds, input =>
        {
            var random = FuzzSplits.RandomFor(input);
            foreach (var strip in new[] { false, true })
            {
                var whole = Relay(input, [input.Length], strip);
                if (!strip)
                {
                    Assert.Equal(input, whole.Output); // nothing stripped: the stream passes unchanged
                }

                var pieces = FuzzSplits.Pieces(input.Length, 1 + random.Next(256), random).ToArray();
                Assert.Equal(whole, Relay(input, pieces, strip));
            }
        });

        output.WriteLine($"{inputs} inputs");

        Assert.True(inputs > StreamSeeds.Count, $"only {inputs} inputs in the budget");
    }

    [Fact]
    public void UsageJsonScanner_FuzzedBodies_FindTheSameUsageHoweverTheyArrive()
    {
        var inputs = Fuzz.Run(JsonSeeds, input =>
        {
            var random = FuzzSplits.RandomFor(input);
            var whole = Scan(input, [input.Length]);
            Assert.Equal(whole, Scan(input, [.. FuzzSplits.Pieces(input.Length, 1 + random.Next(64), random)]));
        });

        output.WriteLine($"{inputs} inputs");

        Assert.True(inputs > JsonSeeds.Count, $"only {inputs} inputs in the budget");
    }

    [Theory]
    [InlineData("data: {\"\\ud800\":1,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")]   // a lone surrogate in a name the reader compares
    [InlineData("data: {\"choices\":[{\"delta\":{\"\\udfff\\ud800\":\"a\"}}]}\n\n")]
    [InlineData("data: {\"usage\":{\"\\ud800\\ud800\\ud800\":1,\"prompt_tokens\":2}}\n\n")]  // long enough to be unescaped for "prompt_tokens"
    [InlineData("data: {\"usage\":{\"prompt_tokens_details\":{\"\\ud800\\ud800\\ud800\":1}}}\n\n")]
    public void StreamChunkReader_EscapedLoneSurrogateInAName_IsAnOtherChunk(string stream)
    {
        // Found by the fuzzer: Utf8JsonReader.ValueTextEquals throws InvalidOperationException
        // when it unescapes a lone surrogate, which escaped the relay and failed the response.
        var bytes = Encoding.UTF8.GetBytes(stream);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.True(SseEventScanner.TryReadEvent(ref reader, out var sseEvent));

        Assert.Equal(StreamChunkKind.Other, StreamChunkReader.Read(sseEvent, out var usage));
        Assert.Equal(default, usage);
        Assert.Equal(bytes, Relay(bytes, [bytes.Length], stripUsage: true).Output);
    }

    [Fact]
    public void StreamChunkReader_ChunkBrokenAfterItsChoices_IsTheSameKindWhereverItIsCut()
    {
        // Found by the fuzzer: a chunk with text and bad JSON after its choices was Content in one
        // segment (the read stops after the choices when no "usage" is in sight) but Other in two
        // (the search for "usage" was skipped, so the read went on into the bad JSON).
        var bytes = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"x\":}\n\n"u8.ToArray();
        var whole = StreamChunkReader.Read(new ReadOnlySequence<byte>(bytes), out _);

        Assert.Equal(StreamChunkKind.Content, whole);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            Assert.Equal(whole, StreamChunkReader.Read(Segments.Split(bytes, cut), out _));
        }
    }

    [Theory]
    [InlineData("data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":nu\n\n")]
    [InlineData("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":tr\n\n")]
    public void StreamChunkReader_LiteralCutShortAtTheEndOfItsData_ReadsTheSameWhereverItIsCut(string stream)
    {
        // Found by the fuzzer: Utf8JsonReader over several segments throws IndexOutOfRangeException
        // (not a JsonException) on a literal cut short at the end of its input ("nu"), a .NET bug.
        var bytes = Encoding.UTF8.GetBytes(stream);
        var whole = StreamChunkReader.Read(new ReadOnlySequence<byte>(bytes), out var usage);

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            Assert.Equal((whole, usage), (StreamChunkReader.Read(Segments.Split(bytes, cut), out var split), split));
        }
    }

    [Theory]
    [InlineData("{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"x\":nu")]
    [InlineData("{\"x\":fals")]
    public void UsageJsonScanner_LiteralCutShortAtTheEnd_FindsTheSameWhereverItIsCut(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var whole = Scan(bytes, [bytes.Length]);

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var scanner = new UsageJsonScanner();
            Assert.InRange(scanner.Feed(Segments.Split(bytes, cut), isFinalBlock: true), 0, bytes.Length);
            Assert.Equal(whole, (scanner.Found, scanner.Usage));
        }
    }

    [Theory]
    [InlineData("{\"\\ud800\":1,\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}")]
    [InlineData("{\"usage\":{\"prom\\udfff\\ud800pt_tokens\":1,\"prompt_tokens\":1,\"completion_tokens\":2}}")]
    public void UsageJsonScanner_EscapedLoneSurrogateInAName_FindsNoUsageAndThrowsNothing(string json)
    {
        // Found by the fuzzer, as above, for JSON bodies: the body is relayed and accounted at
        // the estimate instead of failing the response.
        var scanner = new UsageJsonScanner();
        var bytes = Encoding.UTF8.GetBytes(json);

        Assert.Equal(bytes.Length, scanner.Feed(new ReadOnlySequence<byte>(bytes), isFinalBlock: true));
        Assert.False(scanner.Found);
    }

    // Each event's bytes and end offset, read from the sequence the way the relay reads it; the
    // reader never moves on a false, and never past the sequence.
    private static List<(string Bytes, long End)> Events(ReadOnlySequence<byte> sequence)
    {
        var events = new List<(string, long)>();
        var reader = new SequenceReader<byte>(sequence);
        while (true)
        {
            var before = reader.Consumed;
            if (!SseEventScanner.TryReadEvent(ref reader, out var sseEvent))
            {
                Assert.Equal(before, reader.Consumed);
                return events;
            }

            Assert.InRange(reader.Consumed, before + 1, sequence.Length);
            Assert.Equal(reader.Consumed - before, sseEvent.Length);
            StreamChunkReader.Read(sseEvent, out _); // must not throw, whatever the event holds
            events.Add((Convert.ToHexString(sseEvent.ToArray()), reader.Consumed));
        }
    }

    // The relay's loop: each read is what was held back plus the next piece (two segments), and
    // the last one is final.
    private static Relayed Relay(byte[] input, int[] pieces, bool stripUsage)
    {
        var filter = new SseUsageFilter(stripUsage);
        var output = new ArrayBufferWriter<byte>();
        var pending = Array.Empty<byte>();
        var offset = 0;
        for (var i = 0; i < pieces.Length; i++)
        {
            var joined = pending.Concat(input.Skip(offset).Take(pieces[i])).ToArray();
            offset += pieces[i];
            var sequence = Segments.Split(joined, pending.Length > 0 && pending.Length < joined.Length ? [pending.Length] : []);
            var before = output.WrittenCount;
            var consumed = filter.Process(sequence, output, isFinal: i == pieces.Length - 1, out var written);
            Assert.Equal(output.WrittenCount - before, written);
            var kept = sequence.Slice(consumed);
            Assert.InRange(kept.Length, 0, sequence.Length);
            pending = kept.ToArray();
        }

        Assert.Empty(pending);
        return new Relayed(output.WrittenSpan.ToArray(), filter.Usage, filter.ContentChunks);
    }

    private static (bool Found, Usage Usage) Scan(byte[] input, int[] pieces)
    {
        var scanner = new UsageJsonScanner();
        var pending = Array.Empty<byte>();
        var offset = 0;
        for (var i = 0; i < pieces.Length; i++)
        {
            var joined = pending.Concat(input.Skip(offset).Take(pieces[i])).ToArray();
            offset += pieces[i];
            var sequence = Segments.Split(joined, pending.Length > 0 && pending.Length < joined.Length ? [pending.Length] : []);
            var consumed = scanner.Feed(sequence, isFinalBlock: i == pieces.Length - 1);
            Assert.InRange(consumed, 0, sequence.Length);
            pending = sequence.Slice(consumed).ToArray();
        }

        return (scanner.Found, scanner.Usage);
    }

    private static List<byte[]> BuildStreamSeeds()
    {
        var seeds = new List<byte[]>();
        foreach (var fixture in new[] { "openai/chat_stream.sse", "openai/chat_stream_usage.sse", "openai/openai_ref_chat_stream_usage.sse" })
        {
            var text = Fixtures.Text(fixture);
            seeds.Add(Encoding.UTF8.GetBytes(text));
            seeds.Add(Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\n").Replace("\n", "\r\n", StringComparison.Ordinal)));
        }

        return seeds;
    }

    private sealed record Relayed(byte[] Output, Usage? Usage, long ContentChunks)
    {
        public bool Equals(Relayed? other) =>
            other is not null && Output.AsSpan().SequenceEqual(other.Output) && Usage == other.Usage && ContentChunks == other.ContentChunks;

        public override int GetHashCode() => HashCode.Combine(Output.Length, Usage, ContentChunks);
    }
}
