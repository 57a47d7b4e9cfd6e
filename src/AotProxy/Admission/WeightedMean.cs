namespace AotProxy.Admission;

// A mean of values weighted by counts: the served classes' TTFT ratios (or baselines), each by its
// class's first tokens, so that the mix of classes served cancels out of the judged ratio.
internal struct WeightedMean
{
    private double _sum;
    private long _weight;

    // NaN while nothing was added.
    public readonly double Mean => _weight > 0 ? _sum / _weight : double.NaN;

    // The counts added, of the values that were not NaN.
    public readonly long Weight => _weight;

    // A NaN value (too few samples, no baseline) adds nothing. Returns the value.
    public double Add(double value, long weight)
    {
        if (!double.IsNaN(value) && weight > 0)
        {
            _sum += value * weight;
            _weight += weight;
        }

        return value;
    }
}
