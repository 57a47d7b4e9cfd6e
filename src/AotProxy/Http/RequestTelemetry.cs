using System.Collections.Concurrent;
using AotProxy.Gateway;
using Prometheus;

namespace AotProxy.Http;

// The request as a whole: counted by final status (Ledger/RecordStage), its latency, time to
// first byte and the gateway's overhead observed per model, and the time to first byte per class
// too (Accounting/AccountingStage).
internal sealed class RequestTelemetry
{
    private readonly ConcurrentDictionary<(string Model, string Class, int Status), Counter.Child> _requests = new();
    private readonly ConcurrentDictionary<string, Histogram.Child> _latency = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram.Child> _ttft = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram.Child> _classTtft = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram.Child> _overhead = new(StringComparer.Ordinal);
    private readonly Counter _requestsTotal;
    private readonly Histogram _requestLatency;
    private readonly Histogram _ttftSeconds;
    private readonly Histogram _classTtftSeconds;
    private readonly Histogram _overheadSeconds;

    // 50 µs doubling 15 times (~0.8 s), then +Inf: the gateway's own work is tens of µs to a few
    // ms (perf/RESULTS.md); pacing waits and retry backoffs land in the upper buckets.
    internal static readonly double[] OverheadBuckets = [.. Enumerable.Range(0, 15).Select(i => 0.00005 * Math.Pow(2, i))];

    public RequestTelemetry(CollectorRegistry registry)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        _requestsTotal = factory.CreateCounter("llm_gateway_requests_total", "Requests by model, class and final HTTP status.", ["model", "class", "status"]);
        _requestLatency = factory.CreateHistogram("llm_gateway_request_latency_seconds", "Time from request start to the last response byte.", ["model"], new HistogramConfiguration { Buckets = TelemetrySeries.LatencyBuckets });
        _ttftSeconds = factory.CreateHistogram("llm_gateway_ttft_seconds", "Time from the upstream send to the first response byte (for streams: the first token).", ["model"], new HistogramConfiguration { Buckets = TelemetrySeries.LatencyBuckets });

        // By class beside by model (the SPEC's series keeps its one label): what a class's
        // ttft_sla is measured on; classes come from the config, so the series stay few.
        _classTtftSeconds = factory.CreateHistogram("llm_gateway_class_ttft_seconds", "Time to first byte as llm_gateway_ttft_seconds, by the caller's class.", ["class"], new HistogramConfiguration { Buckets = TelemetrySeries.LatencyBuckets });
        _overheadSeconds = factory.CreateHistogram("llm_gateway_overhead_seconds", "The gateway's own time on a request a worker answered, up to the response head (x-gateway-overhead-ms): from its arrival, less its admission queue wait and its earlier attempts' time on workers.", ["model"], new HistogramConfiguration { Buckets = OverheadBuckets });
    }

    // Every request answered since the start, summed from the counters at read time (the live
    // console's total): the hot path pays nothing more for it.
    public long Total
    {
        get
        {
            double total = 0;
            foreach (var (_, counter) in _requests)
            {
                total += counter.Value;
            }

            return (long)total;
        }
    }

    public void CountRequest(string model, string @class, int status) =>
        _requests.GetOrAdd((model, @class, status), static (key, counter) => counter.WithLabels(key.Model, key.Class, StatusText.Of(key.Status)), _requestsTotal).Inc();

    public void ObserveLatency(string model, TimeSpan elapsed) =>
        TelemetrySeries.Child(_latency, _requestLatency, model).Observe(elapsed.TotalSeconds);

    public void ObserveTtft(string model, string @class, TimeSpan elapsed)
    {
        TelemetrySeries.Child(_ttft, _ttftSeconds, model).Observe(elapsed.TotalSeconds);
        TelemetrySeries.Child(_classTtft, _classTtftSeconds, @class).Observe(elapsed.TotalSeconds);
    }

    public void ObserveOverhead(string model, TimeSpan overhead) =>
        TelemetrySeries.Child(_overhead, _overheadSeconds, model).Observe(overhead.TotalSeconds);
}
