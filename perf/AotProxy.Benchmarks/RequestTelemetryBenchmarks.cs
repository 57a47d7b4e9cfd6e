using System.Collections.Concurrent;
using AotProxy.Gateway;
using AotProxy.Http;
using BenchmarkDotNet.Attributes;
using Prometheus;

namespace AotProxy.Benchmarks;

// What a request's time to first byte costs its accounting stage: ObserveTtft observes the SPEC's
// per-model histogram and, since issue 18, the per-class one the TTFT SLA alert reads
// (llm_gateway_class_ttft_seconds). The baseline is the per-model observation alone, what
// ObserveTtft did before. Expected: tens of ns more, 0 B either way.
[MemoryDiagnoser]
public class RequestTelemetryBenchmarks
{
    private static readonly TimeSpan FirstByte = TimeSpan.FromMilliseconds(7);

    private readonly ConcurrentDictionary<string, Histogram.Child> _byModel = new(StringComparer.Ordinal);
    private RequestTelemetry _telemetry = null!;
    private Histogram _modelOnly = null!;

    [GlobalSetup]
    public void Setup()
    {
        var registry = Metrics.NewCustomRegistry();
        _telemetry = new RequestTelemetry(registry);
        _modelOnly = Metrics.WithCustomRegistry(Metrics.NewCustomRegistry())
            .CreateHistogram("ttft_by_model_only", "the per-model histogram alone", ["model"], new HistogramConfiguration { Buckets = TelemetrySeries.LatencyBuckets });
        ModelTtftOnly();
        ObserveTtft();
    }

    [Benchmark(Baseline = true)]
    public void ModelTtftOnly() => TelemetrySeries.Child(_byModel, _modelOnly, "meta-llama/Llama-3.1-8B-Instruct").Observe(FirstByte.TotalSeconds);

    [Benchmark]
    public void ObserveTtft() => _telemetry.ObserveTtft("meta-llama/Llama-3.1-8B-Instruct", "interactive", FirstByte);
}
