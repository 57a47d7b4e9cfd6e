namespace AotProxy.Testing;

// A PCM WAV file of silence (16 kHz, mono, 16-bit, the rate Whisper resamples to): the upload the
// audio tests send, whose header says its length exactly.
internal static class WavFile
{
    public const int SampleRate = 16_000;

    public static byte[] Of(double seconds)
    {
        var data = (int)(seconds * SampleRate) * 2;
        var wav = new byte[44 + data];
        var span = wav.AsSpan();
        "RIFF"u8.CopyTo(span);
        BitConverter.TryWriteBytes(span[4..], 36 + data);
        "WAVEfmt "u8.CopyTo(span[8..]);
        BitConverter.TryWriteBytes(span[16..], 16);          // fmt chunk size
        BitConverter.TryWriteBytes(span[20..], (short)1);    // PCM
        BitConverter.TryWriteBytes(span[22..], (short)1);    // mono
        BitConverter.TryWriteBytes(span[24..], SampleRate);
        BitConverter.TryWriteBytes(span[28..], SampleRate * 2); // byte rate
        BitConverter.TryWriteBytes(span[32..], (short)2);    // block align
        BitConverter.TryWriteBytes(span[34..], (short)16);   // bits per sample
        "data"u8.CopyTo(span[36..]);
        BitConverter.TryWriteBytes(span[40..], data);
        return wav;
    }
}
