namespace AotProxy.Configuration;

// One worker's upstream limits as the pacer applies them, derived from its rpm/tpm and [pacing].
// Rpm or Tpm 0: that dimension is unpaced; a worker with both 0 has no PacingModel at all.
internal sealed record PacingModel(long Rpm, long Tpm, int SafetyMargin, TimeSpan MaxWait)
{
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(60);

    // Requests allowed to start in any 60 s: rpm − safety_margin (0: no request limit).
    public long RequestLimit => Rpm == 0 ? 0 : Rpm - SafetyMargin;

    // Tokens allowed in any 60 s: tpm less safety_margin percent of it, at least 1 (0: no token limit).
    public long TokenLimit => Tpm == 0 ? 0 : Math.Max(1, Tpm - (Tpm * SafetyMargin / 100));

    // Evenly spread, RequestLimit requests fill the window exactly and never form a burst:
    // the upstream may enforce its limit over sub-windows too (OpenAI: 60,000 rpm as 1,000 per second).
    public TimeSpan Spacing => RequestLimit == 0 ? TimeSpan.Zero : Window / RequestLimit;
}
