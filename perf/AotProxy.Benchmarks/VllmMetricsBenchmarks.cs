using System.Buffers;
using AotProxy.Routing;
using AotProxy.Testing;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// Returns the sample count (VllmMetrics is internal; benchmark methods are public).
// One /metrics scrape of a real vLLM server, per worker per metrics_interval.
[MemoryDiagnoser]
public class VllmMetricsBenchmarks
{
    private byte[] _body = [];
    private ReadOnlySequence<byte> _segments;

    [Params("metrics-v1-0.19.1.txt", "metrics-v0-partial.txt")]
    public string Fixture { get; set; } = "metrics-v1-0.19.1.txt";

    [GlobalSetup]
    public void Setup()
    {
        _body = Fixtures.Bytes("vllm/" + Fixture);
        _segments = SegmentedSequence.Create(_body, 4096);
        var metrics = VllmMetricsReader.Read(_body);
        if (metrics.Status != VllmMetricsStatus.Complete || metrics.InvalidLines != 0 || Segments4K() != Span())
        {
            throw new InvalidOperationException($"{Fixture}: not read as a complete scrape");
        }
    }

    [Benchmark]
    public int Span() => VllmMetricsReader.Read(_body).Samples;

    // As a PipeReader over a socket hands it over: 4 KiB segments, lines cut at their edges.
    [Benchmark]
    public int Segments4K() => VllmMetricsReader.Read(_segments).Samples;
}
