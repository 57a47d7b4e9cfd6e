using System.Text;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

public sealed class ChunkedDecoderTests
{
    // The fixture SSE stream, framed the way uvicorn frames it: one chunk per event, plus an
    // extension and a trailer, which the decoder must drop.
    private static readonly byte[] Events = Fixtures.Bytes("openai/chat_stream_usage.sse");

    [Fact]
    public void Decode_OneChunkPerEvent_GivesTheStreamBack()
    {
        var (decoded, done) = DecodeInPieces(Chunked(Events, 300), 1 << 20);

        Assert.True(done);
        Assert.Equal(Events, decoded);
    }

    [Fact]
    public void Decode_InputSplitAtEveryPoint_GivesTheSameBytes()
    {
        var encoded = Chunked(Events.AsSpan(0, 700).ToArray(), 97);
        for (var split = 0; split <= encoded.Length; split++)
        {
            var decoder = new ChunkedDecoder();
            var output = new byte[1024];
            var written = Feed(ref decoder, encoded.AsSpan(0, split), output, 0);
            written = Feed(ref decoder, encoded.AsSpan(split), output, written);

            Assert.True(decoder.IsDone, $"split at {split}");
            Assert.Equal(Events.AsSpan(0, 700).ToArray(), output.AsSpan(0, written).ToArray());
        }
    }

    [Fact]
    public void Decode_ByteAtATimeIntoATinyOutput_GivesTheSameBytes()
    {
        var encoded = Chunked(Events, 1000);
        var (decoded, done) = DecodeInPieces(encoded, pieceSize: 1, outputSize: 3);

        Assert.True(done);
        Assert.Equal(Events, decoded);
    }

    [Fact]
    public void Decode_BeforeTheLastChunk_IsNotDone()
    {
        var encoded = Chunked(Events, 500);
        var (_, done) = DecodeInPieces(encoded.AsSpan(0, encoded.Length - 3).ToArray(), 64);

        Assert.False(done);
    }

    [Theory]
    [InlineData("g\r\nabc\r\n0\r\n\r\n")]          // not hex
    [InlineData("\r\n")]                          // no size
    [InlineData("3\r\nabcX\r\n0\r\n\r\n")]          // data longer than its size
    [InlineData("3\nabc\r\n0\r\n\r\n")]             // bare LF after the size
    [InlineData("1234567890abcdef0\r\n")]         // 17 hex digits
    [InlineData("3;ext\nabc\r\n")]                  // LF inside an extension
    [InlineData("0\r\nTrailer: x\nmore\r\n\r\n")] // bare LF in a trailer
    [InlineData("0\r\nX")]                        // trailer section...
    public void Decode_Malformed_IsInvalidOrWaits(string text)
    {
        var decoder = new ChunkedDecoder();
        var output = new byte[64];
        decoder.Decode(Encoding.ASCII.GetBytes(text), output, out _, out _);

        Assert.False(decoder.IsDone);
        Assert.True(decoder.IsInvalid || text == "0\r\nX", text);
    }

    [Fact]
    public void Decode_EndlessExtension_IsInvalid()
    {
        var decoder = new ChunkedDecoder();
        var input = Encoding.ASCII.GetBytes("5;" + new string('x', 20_000));
        decoder.Decode(input, new byte[16], out _, out _);

        Assert.True(decoder.IsInvalid);
    }

    private static byte[] Chunked(byte[] data, int chunkSize)
    {
        var output = new MemoryStream();
        for (var i = 0; i < data.Length; i += chunkSize)
        {
            var size = Math.Min(chunkSize, data.Length - i);
            output.Write(Encoding.ASCII.GetBytes(i == 0 ? $"{size:x};name=value\r\n" : $"{size:X}\r\n"));
            output.Write(data, i, size);
            output.Write("\r\n"u8);
        }

        output.Write("0\r\nX-Trailer: yes\r\n\r\n"u8);
        return output.ToArray();
    }

    private static (byte[] Decoded, bool Done) DecodeInPieces(byte[] encoded, int pieceSize, int outputSize = 1 << 16)
    {
        var decoder = new ChunkedDecoder();
        var result = new MemoryStream();
        var output = new byte[outputSize];
        for (var offset = 0; offset < encoded.Length && !decoder.IsDone;)
        {
            var piece = encoded.AsSpan(offset, Math.Min(pieceSize, encoded.Length - offset));
            decoder.Decode(piece, output, out var read, out var written);
            Assert.False(decoder.IsInvalid);
            result.Write(output, 0, written);
            offset += read;
        }

        return (result.ToArray(), decoder.IsDone);
    }

    private static int Feed(ref ChunkedDecoder decoder, ReadOnlySpan<byte> input, byte[] output, int written)
    {
        while (!input.IsEmpty)
        {
            decoder.Decode(input, output.AsSpan(written), out var read, out var count);
            Assert.False(decoder.IsInvalid);
            input = input[read..];
            written += count;
        }

        return written;
    }
}
