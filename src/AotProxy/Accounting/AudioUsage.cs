using AotProxy.Http;
using AotProxy.Inspection;

namespace AotProxy.Accounting;

// What an audio request (/v1/audio/transcriptions, /translations) used, from what vLLM reports:
// - a transcription's JSON answer: `usage: {"type":"duration","seconds":N}` (rounded up), no
//   tokens. The seconds are the ledger's; the token budgets and TPM count them as
//   N x AudioDuration.TokensPerSecond prompt tokens.
// - a stream with stream_include_usage (the gateway asks for it): prompt and completion tokens,
//   as vLLM counts them; the seconds are the gateway's measure of the upload (AudioDuration).
// - no usage (a translation's JSON, verbose_json): the relay's estimate, the upload's seconds in
//   tokens, marked Estimated, with the measured seconds.
internal static class AudioUsage
{
    public static Usage Settle(Usage reported, in InspectedRequest inspected)
    {
        if (reported.AudioSeconds > 0 && reported.TotalTokens == 0)
        {
            return reported with { PromptTokens = reported.AudioSeconds * AudioDuration.TokensPerSecond };
        }

        return reported.AudioSeconds > 0 ? reported : reported with { AudioSeconds = inspected.AudioSeconds };
    }

    public static Usage? Settle(EndpointKind endpoint, Usage? reported, in InspectedRequest inspected) =>
        EndpointTraits.TakesAudio(endpoint) && reported is { } usage ? Settle(usage, inspected) : reported;
}
