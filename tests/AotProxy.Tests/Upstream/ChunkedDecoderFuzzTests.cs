using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using AotProxy.Tests.Support;
using AotProxy.Upstream;
using Xunit.Abstractions;

namespace AotProxy.Tests.Upstream;

// The chunked decoder under the bounded mutation fuzzer (issue 14), seeded with chunked
// encodings of the captured SSE streams and JSON bodies (chunk sizes as uvicorn and nginx cut
// them, extensions, trailers). Its contract: Decode never throws and reports bad framing as
// IsInvalid; `read` and `written` stay within the spans it was given and it always makes
// progress; the bytes and the end state do not depend on how input and output are cut. The
// BodyReader around it turns IsInvalid into UpstreamProtocolException and a body cut short into
// IOException, and throws nothing else.
public sealed class ChunkedDecoderFuzzTests(ITestOutputHelper output)
{
    private static readonly IReadOnlyList<byte[]> Seeds = BuildSeeds();

    [Fact]
    public void Decode_FuzzedBodies_StayWithinTheContract()
    {
        var inputs = Fuzz.Run(Seeds, Check);

        output.WriteLine($"{inputs} inputs");

        Assert.True(inputs > Seeds.Count, $"only {inputs} inputs in the budget");
    }

    [Fact]
    public void BodyReader_FuzzedChunkedBodies_ThrowOnlyIOExceptions()
    {
        var inputs = Fuzz.Run(Seeds, input =>
        {
            var expected = DecodeWhole(input);
            var (decoded, error) = ReadThroughBodyReader(input);
            if (expected.Done)
            {
                Assert.Null(error);
                Assert.Equal(expected.Data, decoded);
            }
            else
            {
                // Bad framing, or a body that ends before its last chunk: an IOException, after
                // at most the bytes the decoder gave before it stopped.
                Assert.NotNull(error);
                Assert.True((error is UpstreamProtocolException) == expected.Invalid, $"{error.GetType().Name} for invalid={expected.Invalid}");
                Assert.True(expected.Data.AsSpan().StartsWith(decoded), "the reader gave bytes the decoder did not");
            }
        });

        output.WriteLine($"{inputs} inputs");

        Assert.True(inputs > Seeds.Count, $"only {inputs} inputs in the budget");
    }

    [Fact]
    public void Decode_Seeds_AreWholeBodies()
    {
        foreach (var seed in Seeds)
        {
            Assert.True(DecodeWhole(seed).Done);
        }
    }

    private static void Check(byte[] input)
    {
        var random = FuzzSplits.RandomFor(input);
        var whole = DecodeWhole(input);

        // The same input fed in random pieces into random small outputs.
        for (var round = 0; round < 3; round++)
        {
            var decoder = new ChunkedDecoder();
            var output = new List<byte>();
            var offset = 0;
            foreach (var piece in FuzzSplits.Pieces(input.Length, 1 + random.Next(64), random))
            {
                var rest = input.AsSpan(offset, piece);
                while (!rest.IsEmpty && !decoder.IsDone && !decoder.IsInvalid)
                {
                    var buffer = new byte[1 + random.Next(16)];
                    var read = Step(ref decoder, rest, buffer, output);
                    rest = rest[read..];
                    offset += read;
                }

                if (decoder.IsDone || decoder.IsInvalid)
                {
                    break;
                }
            }

            Assert.Equal(whole, new Decoded([.. output], decoder.IsDone, decoder.IsInvalid, offset));
        }

        // Every prefix: never Done before the whole body is there, and the bytes so far are a
        // prefix of the whole body's bytes.
        foreach (var length in FuzzSplits.PrefixLengths(input.Length, random))
        {
            var prefix = DecodeWhole(input[..length]);
            if (whole.Done && length >= whole.Read)
            {
                Assert.Equal(whole, prefix);
                continue;
            }

            Assert.False(prefix.Done && !whole.Done, "a prefix finished a body the whole input does not");
            Assert.True(whole.Data.AsSpan().StartsWith(prefix.Data), "a prefix decoded other bytes");
            Assert.True(!prefix.Invalid || whole.Invalid, "a prefix was invalid where the whole is not");
        }
    }

    // One Decode call, with the contract checked: read and written within their spans, and
    // progress whenever there is input and room for output.
    private static int Step(ref ChunkedDecoder decoder, ReadOnlySpan<byte> input, byte[] buffer, List<byte> output)
    {
        decoder.Decode(input, buffer, out var read, out var written);
        Assert.InRange(read, 0, input.Length);
        Assert.InRange(written, 0, buffer.Length);
        Assert.True(read > 0 || written > 0 || decoder.IsDone || decoder.IsInvalid, "no progress");
        output.AddRange(buffer.AsSpan(0, written));
        return read;
    }

    private static Decoded DecodeWhole(byte[] input)
    {
        var decoder = new ChunkedDecoder();
        var output = new List<byte>();
        var offset = 0;
        while (offset < input.Length && !decoder.IsDone && !decoder.IsInvalid)
        {
            offset += Step(ref decoder, input.AsSpan(offset), new byte[Math.Max(1, input.Length)], output);
        }

        return new Decoded([.. output], decoder.IsDone, decoder.IsInvalid, offset);
    }

    private static (byte[] Data, Exception? Error) ReadThroughBodyReader(byte[] input)
    {
        var body = new BodyReader();
        var inner = PipeReader.Create(new ReadOnlySequence<byte>(input));
        body.Start(inner, BodyFraming.Chunked, -1);
        var output = new List<byte>();
        try
        {
            for (var reads = 0; reads < 10_000; reads++)
            {
                var result = body.ReadAsync().AsTask().GetAwaiter().GetResult();
                foreach (var segment in result.Buffer)
                {
                    output.AddRange(segment.Span);
                }

                body.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    Assert.True(body.IsComplete);
                    return ([.. output], null);
                }
            }

            Assert.Fail("the body reader did not finish in 10,000 reads");
            return default;
        }
        catch (IOException e)
        {
            return ([.. output], e);
        }
        finally
        {
            body.Release();
        }
    }

    private static List<byte[]> BuildSeeds()
    {
        var seeds = new List<byte[]>();
        foreach (var fixture in new[] { "openai/chat_stream.sse", "openai/chat_stream_usage.sse", "openai/openai_ref_chat_stream_usage.sse", "openai/chat_nonstream.json", "openai/embeddings.json" })
        {
            var bytes = Fixtures.Bytes(fixture);
            seeds.Add(Chunked(bytes, 300, extension: "", trailer: ""));                     // uvicorn: one chunk per write
            seeds.Add(Chunked(bytes, 4096, extension: ";name=value", trailer: "X-Trailer: 1\r\n")); // nginx-sized, with the extras
        }

        seeds.Add("0\r\n\r\n"u8.ToArray()); // an empty body
        return seeds;
    }

    private static byte[] Chunked(byte[] data, int size, string extension, string trailer)
    {
        var encoded = new List<byte>();
        foreach (var chunk in data.Chunk(size))
        {
            encoded.AddRange(Encoding.ASCII.GetBytes($"{chunk.Length:x}{extension}\r\n"));
            encoded.AddRange(chunk);
            encoded.AddRange("\r\n"u8.ToArray());
        }

        encoded.AddRange(Encoding.ASCII.GetBytes($"0\r\n{trailer}\r\n"));
        return [.. encoded];
    }

    private sealed record Decoded(byte[] Data, bool Done, bool Invalid, int Read)
    {
        public bool Equals(Decoded? other) =>
            other is not null && Data.AsSpan().SequenceEqual(other.Data) && Done == other.Done && Invalid == other.Invalid && Read == other.Read;

        public override int GetHashCode() => HashCode.Combine(Data.Length, Done, Invalid, Read);
    }
}
