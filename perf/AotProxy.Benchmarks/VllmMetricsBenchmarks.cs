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
    private VllmModelFilter _filter = VllmModelFilter.All;

    [Params("metrics-v1-0.19.1.txt", "metrics-v0-partial.txt")]
    public string Fixture { get; set; } = "metrics-v1-0.19.1.txt";

    [GlobalSetup]
    public void Setup()
    {
        _body = Fixtures.Bytes("vllm/" + Fixture);
        _segments = SegmentedSequence.Create(_body, 4096);

        // The worker's own model, behind a second one that never matches: a multi-model worker's
        // filter, so every model_name is compared twice.
        var model = Fixture.Contains("v1", StringComparison.Ordinal) ? "meta-llama/Llama-3.1-8B-Instruct" : "Qwen/Qwen2.5-Coder-1.5B-Instruct";
        _filter = new VllmModelFilter(["some/other-model", model]);
        var metrics = VllmMetricsReader.Read(_body);
        if (metrics.Status != VllmMetricsStatus.Complete || metrics.InvalidLines != 0 || Segments4K() != Span()
            || VllmMetricsReader.Read(_body, _filter) != metrics || VllmMetricsReader.Read(_segments, _filter) != metrics)
        {
            throw new InvalidOperationException($"{Fixture}: not read as a complete scrape");
        }
    }

    [Benchmark]
    public int Span() => VllmMetricsReader.Read(_body).Samples;

    // As a PipeReader over a socket hands it over: 4 KiB segments, lines cut at their edges.
    [Benchmark]
    public int Segments4K() => VllmMetricsReader.Read(_segments).Samples;

    // What WorkerScrape does: segments, and only the worker's models count.
    [Benchmark]
    public int FilteredSegments4K() => VllmMetricsReader.Read(_segments, _filter).Samples;

    [Benchmark]
    public int FilteredSpan() => VllmMetricsReader.Read(_body, _filter).Samples;
}
