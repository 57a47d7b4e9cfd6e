using System.Buffers.Binary;

namespace AotProxy.Inspection;

// An upload's length in whole seconds, rounded up as vLLM rounds its `usage.seconds`, read from
// the bytes the gateway holds anyway: a WAV file's own header (its data chunk over its byte rate,
// exact), else the file's size at 16,000 bytes per second (128 kbit/s, a common MP3/M4A rate; a
// lower-rate file is underestimated, and vLLM's reported usage settles it). The reservation's
// estimate, and a stream's seconds (vLLM reports a stream's tokens, not its seconds).
internal static class AudioDuration
{
    public const int CompressedBytesPerSecond = 16_000;

    // The prompt tokens a second of audio stands for: Whisper's encoder turns each 30-s window
    // into 1,500 positions. vLLM reports a transcription's non-stream usage in seconds only;
    // the token budgets and TPM count them at this rate (AudioUsage).
    public const int TokensPerSecond = 50;

    public static long Seconds(ReadOnlySpan<byte> file)
    {
        if (file.IsEmpty)
        {
            return 0;
        }

        var bytes = file.Length;
        var rate = CompressedBytesPerSecond;
        if (file.Length >= 12 && file[..4].SequenceEqual("RIFF"u8) && file[8..12].SequenceEqual("WAVE"u8) && WaveData(file[12..], out var byteRate, out var dataBytes))
        {
            (bytes, rate) = (dataBytes, byteRate);
        }

        return Math.Max(1, ((long)bytes + rate - 1) / rate);
    }

    // RIFF chunks after "WAVE": "fmt " holds the byte rate (offset 8 of its data), "data" the
    // samples. A streamed WAV's data size is 0 or 0xFFFFFFFF: then the rest of the file is its data.
    private static bool WaveData(ReadOnlySpan<byte> chunks, out int byteRate, out int dataBytes)
    {
        byteRate = 0;
        dataBytes = 0;
        while (chunks.Length >= 8)
        {
            var size = BinaryPrimitives.ReadUInt32LittleEndian(chunks[4..8]);
            var id = chunks[..4];
            var data = chunks[8..];
            if (id.SequenceEqual("fmt "u8) && data.Length >= 12)
            {
                byteRate = BinaryPrimitives.ReadInt32LittleEndian(data[8..12]);
            }
            else if (id.SequenceEqual("data"u8))
            {
                dataBytes = size == 0 || size > (uint)data.Length ? data.Length : (int)size;
                return byteRate > 0;
            }

            if (size > (uint)data.Length)
            {
                return false;
            }

            chunks = data[((int)size + ((int)size & 1))..]; // chunks are padded to even sizes
            if (chunks.Length == 0 && (size & 1) == 1)
            {
                return false;
            }
        }

        return false;
    }
}
