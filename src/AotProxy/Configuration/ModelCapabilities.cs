namespace AotProxy.Configuration;

// What a served model can do, as its [[models]] entry declares it (model "auto" filters on them).
[Flags]
internal enum ModelCapabilities : byte
{
    None = 0,
    Chat = 1,
    Tools = 2,
    Vision = 4,
    Embeddings = 8,
    Transcription = 16, // speech to text (/v1/audio/transcriptions and /translations: vLLM's Whisper-class models)
}
