using System.Collections.Concurrent;
using AotProxy.Gateway;
using AotProxy.Routing;
using Prometheus;

namespace AotProxy.Admission;

// The admission stage's metrics by class: decisions and queue waits (AdmissionController, on the
// request's path), and the queue depth, protection's shedding and preemptions, set at scrape time.
internal sealed class AdmissionTelemetry
{
    private readonly ConcurrentDictionary<(string Class, AdmissionDecision Decision), Counter.Child> _admissions = new();
    private readonly ConcurrentDictionary<string, Histogram.Child> _queueWait = new(StringComparer.Ordinal);
    private readonly CollectorRegistry _registry;
    private readonly Gauge _queueDepth;
    private readonly Gauge _ttftSla;
    private readonly Gauge _shedding;
    private readonly Gauge _admitFraction;
    private readonly Histogram _queueWaitSeconds;
    private readonly Counter _admissionsTotal;
    private readonly Counter _preemptions;

    public AdmissionTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _queueDepth = factory.CreateGauge("llm_gateway_queue_depth", "Requests waiting for a slot, by class (all models).", ["class"]);
        _ttftSla = factory.CreateGauge("llm_gateway_class_ttft_sla_seconds", "The class's promised p95 time to first token ([[classes]] ttft_sla); classes without one have no series.", ["class"]);
        _shedding = factory.CreateGauge("llm_gateway_class_shedding", "1 while per-class protection sheds the class's new requests (on any model pool), else 0.", ["class"]);
        _admitFraction = factory.CreateGauge("llm_gateway_class_admit_fraction", "The share of the class's new requests per-class protection admits: 0 shed, 0.25 then 0.5 while it comes back half-open, 1 (the lowest over the model pools).", ["class"]);
        _queueWaitSeconds = factory.CreateHistogram("llm_gateway_queue_wait_seconds", "Time a queued request waited, granted or not, by class.", ["class"], new HistogramConfiguration { Buckets = TelemetrySeries.LatencyBuckets });
        _preemptions = factory.CreateCounter("llm_gateway_preemptions_total", "Admitted requests of a preemptible class cancelled upstream before their first byte and requeued, by class.", ["class"]);
        _admissionsTotal = factory.CreateCounter("llm_gateway_admissions_total", "Admission decisions by class: admitted (straight on), granted (after queueing), queue_full, timed_out, capacity_guard, shed, no_capacity, cancelled.", ["class", "outcome"]);
    }

    public void CountDecision(string @class, AdmissionDecision decision) =>
        _admissions.GetOrAdd((@class, decision), static (key, counter) => counter.WithLabels(key.Class, EnumNames.Snake(key.Decision)), _admissionsTotal).Inc();

    public void ObserveQueueWait(string @class, TimeSpan waited) =>
        TelemetrySeries.Child(_queueWait, _queueWaitSeconds, @class).Observe(waited.TotalSeconds);

    // Every configured class has a queue depth series (0 when nobody waits), summed over the model
    // pools, and an SLA series when it has a ttft_sla (a reload that removes one removes the series).
    public void CollectFrom(GatewayState state, AdmissionController admissions) => _registry.AddBeforeCollectCallback(() =>
    {
        var classes = state.Current.Config.Classes;
        TelemetrySeries.Prune(_queueDepth, name => classes.Any(c => c.Name == name));
        TelemetrySeries.Prune(_shedding, name => classes.Any(c => c.Name == name));
        TelemetrySeries.Prune(_admitFraction, name => classes.Any(c => c.Name == name));
        TelemetrySeries.Prune(_ttftSla, name => classes.Any(c => c.Name == name && c.TtftSla is not null));
        foreach (var classModel in classes)
        {
            var waiting = admissions.Models.Sum(m => m.Classes.Where(a => a.Name == classModel.Name).Sum(a => a.Waiting));
            _queueDepth.WithLabels(classModel.Name).Set(waiting);
            var admitted = admissions.Models.Select(m => m.Protection.State.AdmitFraction(classModel.Name)).DefaultIfEmpty(1).Min();
            _shedding.WithLabels(classModel.Name).Set(admitted == 0 ? 1 : 0);
            _admitFraction.WithLabels(classModel.Name).Set(admitted);
            if (classModel.Preemptible)
            {
                // The class accounts live as long as the process: their sum never goes back.
                _preemptions.WithLabels(classModel.Name).IncTo(admissions.Models.Sum(m => m.Classes.Where(a => a.Name == classModel.Name).Sum(a => a.Preemptions)));
            }
            if (classModel.TtftSla is { } sla)
            {
                _ttftSla.WithLabels(classModel.Name).Set(sla.TotalSeconds);
            }
        }
    });
}
