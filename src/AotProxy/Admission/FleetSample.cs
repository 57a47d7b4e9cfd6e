namespace AotProxy.Admission;

// Requests and first tokens summed over some of FleetOutcomes' buckets.
internal readonly record struct FleetSample(long Failed, long Requests, long FirstTokens, long TtftMicros)
{
    public static FleetSample operator +(FleetSample a, FleetSample b) =>
        new(a.Failed + b.Failed, a.Requests + b.Requests, a.FirstTokens + b.FirstTokens, a.TtftMicros + b.TtftMicros);

    // NaN below minSamples: too few to judge.
    public double ErrorRate(int minSamples) => Requests >= minSamples ? (double)Failed / Requests : double.NaN;

    public double MeanTtftSeconds(int minSamples) => FirstTokens >= Math.Max(minSamples, 1) ? TtftMicros / 1e6 / FirstTokens : double.NaN;
}
