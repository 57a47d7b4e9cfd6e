using System.Buffers.Binary;

namespace AotProxy.Simulator;

// The simulator's "librosa.load": the length of a PCM WAV upload, from its header. Anything else
// is refused as vLLM refuses a file libsndfile cannot read.
internal static class AudioClip
{
    // Seconds of audio; null: not a WAV file the simulator can read.
    public static double? Seconds(ReadOnlySpan<byte> file)
    {
        if (file.Length < 12 || !file[..4].SequenceEqual("RIFF"u8) || !file[8..12].SequenceEqual("WAVE"u8))
        {
            return null;
        }

        var byteRate = 0;
        var chunks = file[12..];
        while (chunks.Length >= 8)
        {
            var size = BinaryPrimitives.ReadUInt32LittleEndian(chunks[4..8]);
            var data = chunks[8..];
            if (chunks[..4].SequenceEqual("fmt "u8) && data.Length >= 12)
            {
                byteRate = BinaryPrimitives.ReadInt32LittleEndian(data[8..12]);
            }
            else if (chunks[..4].SequenceEqual("data"u8))
            {
                var bytes = Math.Min(size, (uint)data.Length);
                return byteRate > 0 ? (double)bytes / byteRate : null;
            }

            if (size >= (uint)data.Length)
            {
                return null;
            }

            chunks = data[((int)size + ((int)size & 1))..];
        }

        return null;
    }
}
