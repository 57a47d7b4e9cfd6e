namespace AotProxy.Admission;

// Attempts and first tokens summed over some of FleetOutcomes' buckets.
internal readonly record struct FleetSample(long Failed, long Attempts, long FirstTokens, long TtftMicros)
{
    // NaN below minSamples: too few to judge.
    public double ErrorRate(int minSamples) => Attempts >= minSamples ? (double)Failed / Attempts : double.NaN;

    public double MeanTtftSeconds(int minSamples) => FirstTokens >= Math.Max(minSamples, 1) ? TtftMicros / 1e6 / FirstTokens : double.NaN;
}
