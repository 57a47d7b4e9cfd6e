using AotProxy.Load.Recording;

namespace AotProxy.Load.Tests.Recording;

public sealed class HistogramTests
{
    // 3 significant digits: a reported percentile is within 0.1% of the exact one.
    private const double Precision = 0.001;

    private static readonly double[] Percentiles = [1, 25, 50, 90, 99, 99.9, 99.99, 100];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Percentiles_match_a_sorted_array_within_three_significant_digits(int seed)
    {
        // Log-uniform over the whole range (1 µs .. 60 s), so every bucket size is exercised.
        var random = new Random(seed);
        var values = new long[100_000];
        var histogram = new Histogram();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (long)Math.Exp(random.NextDouble() * Math.Log(Histogram.HighestTrackable));
            histogram.Record(values[i]);
        }

        Array.Sort(values);
        foreach (var p in Percentiles)
        {
            var exact = Exact(values, p);
            var reported = histogram.ValueAtPercentile(p);
            Assert.True(Math.Abs(reported - exact) <= exact * Precision, $"p{p}: exact {exact}, reported {reported}");
        }

        Assert.Equal(values.Length, histogram.Count);
        Assert.Equal(values[^1], histogram.Max);
        Assert.Equal(values[0], histogram.Min);
        Assert.Equal(values.Average(v => (double)v), histogram.Mean, 6);
    }

    [Fact]
    public void Latency_like_data_is_as_precise_as_uniform_data()
    {
        // Most values near 100 ms with a long tail: the shape of real latencies.
        var random = new Random(7);
        var values = new long[50_000];
        var histogram = new Histogram();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = 80_000 + (long)(-Math.Log(1 - random.NextDouble()) * 40_000);
            histogram.Record(values[i]);
        }

        Array.Sort(values);
        foreach (var p in Percentiles)
        {
            var exact = Exact(values, p);
            Assert.InRange(histogram.ValueAtPercentile(p), exact * (1 - Precision), exact * (1 + Precision));
        }
    }

    [Fact]
    public void Small_values_are_exact()
    {
        var histogram = new Histogram();
        for (var v = 0; v < 2048; v++)
        {
            histogram.Record(v);
        }

        Assert.Equal(1023, histogram.ValueAtPercentile(50));
        Assert.Equal(2047, histogram.ValueAtPercentile(100));
        Assert.Equal(0, histogram.ValueAtPercentile(0.01));
    }

    [Fact]
    public void Every_bucket_is_at_most_a_thousandth_of_its_value_wide()
    {
        long previousLowest = -1;
        for (var index = 0; index <= Histogram.IndexOf(Histogram.HighestTrackable); index++)
        {
            var lowest = Histogram.LowestOf(index);
            Assert.True(lowest > previousLowest, $"bucket {index} starts at {lowest}, not after {previousLowest}");
            Assert.Equal(index, Histogram.IndexOf(lowest));
            var next = Histogram.LowestOf(index + 1);
            Assert.Equal(index, Histogram.IndexOf(next - 1));
            Assert.True(next - lowest <= Math.Max(1, lowest / 1000.0), $"bucket {index}: [{lowest}, {next}) is too wide");
            previousLowest = lowest;
        }
    }

    [Fact]
    public void Values_outside_the_range_are_clamped_and_still_counted()
    {
        var histogram = new Histogram();
        histogram.Record(-5);
        histogram.Record(Histogram.HighestTrackable * 10);
        Assert.Equal(2, histogram.Count);
        Assert.Equal(0, histogram.Min);
        Assert.Equal(Histogram.HighestTrackable, histogram.Max);
        Assert.Equal(Histogram.HighestTrackable, histogram.ValueAtPercentile(100));
    }

    [Fact]
    public void Concurrent_recording_loses_nothing_and_merging_equals_recording_all()
    {
        var parts = Enumerable.Range(0, 4).Select(_ => new Histogram()).ToArray();
        var shared = new Histogram();
        Parallel.For(0, 4, t =>
        {
            var random = new Random(t);
            for (var i = 0; i < 20_000; i++)
            {
                var value = random.Next(1, 10_000_000);
                shared.Record(value);
                parts[t].Record(value);
            }
        });

        var merged = new Histogram();
        foreach (var part in parts)
        {
            merged.Add(part);
        }

        Assert.Equal(80_000, shared.Count);
        Assert.Equal(shared.Count, merged.Count);
        Assert.Equal(shared.Max, merged.Max);
        Assert.Equal(shared.Mean, merged.Mean, 6);
        foreach (var p in Percentiles)
        {
            Assert.Equal(shared.ValueAtPercentile(p), merged.ValueAtPercentile(p));
        }
    }

    [Fact]
    public void An_empty_histogram_reports_zeros()
    {
        var summary = new Histogram().Summarize();
        Assert.Equal(new HistogramSummary(0, 0, 0, 0, 0, 0, 0), summary);
    }

    // Rank ceil(p/100 * n), 1-based: the definition the histogram promises.
    private static long Exact(long[] sorted, double percentile)
    {
        var rank = (long)Math.Ceiling(percentile / 100 * sorted.Length);
        return sorted[Math.Clamp(rank, 1, sorted.Length) - 1];
    }
}
