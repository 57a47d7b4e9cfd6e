using System.Collections.Concurrent;
using Prometheus;

namespace AotProxy.Gateway;

// What every stage's telemetry shares. The hot path's labelled children are looked up once and
// kept: prometheus-net's WithLabels allocates on every call. Label values come from the config
// (models, classes, tenants, workers) or a fixed set (statuses, outcomes), so the caches stay small.
internal static class TelemetrySeries
{
    // Every histogram's buckets: 1 ms .. ~2 min.
    public static readonly double[] LatencyBuckets = Histogram.ExponentialBuckets(0.001, 2, 18);

    // A counter that mirrors a count its owner keeps (never going down), set at scrape time: the
    // owner's hot path pays nothing for it.
    public static void CounterFrom(CollectorRegistry registry, string name, string help, Func<double> count)
    {
        var counter = Metrics.WithCustomRegistry(registry).CreateCounter(name, help);
        registry.AddBeforeCollectCallback(() => counter.IncTo(count()));
    }

    // A gauge set at scrape time from a value its owner keeps.
    public static void GaugeFrom(CollectorRegistry registry, string name, string help, Func<double> value)
    {
        var gauge = Metrics.WithCustomRegistry(registry).CreateGauge(name, help);
        registry.AddBeforeCollectCallback(() => gauge.Set(value()));
    }

    // The child of a collector with one label, looked up once.
    public static TChild Child<TChild>(ConcurrentDictionary<string, TChild> children, Collector<TChild> collector, string label)
        where TChild : ChildBase =>
        children.GetOrAdd(label, static (key, collector) => collector.WithLabels(key), collector);

    // Every series whose first label fails `keep` is removed.
    public static void Prune<TChild>(Collector<TChild> collector, Func<string, bool> keep)
        where TChild : ChildBase
    {
        foreach (var labels in collector.GetAllLabelValues().ToArray())
        {
            if (!keep(labels[0]))
            {
                collector.RemoveLabelled(labels);
            }
        }
    }

    // Forgets the cached children whose label fails `keep` (their series are pruned beside).
    public static void Prune<TChild>(ConcurrentDictionary<string, TChild> children, Func<string, bool> keep)
    {
        foreach (var label in children.Keys)
        {
            if (!keep(label))
            {
                children.TryRemove(label, out _);
            }
        }
    }
}
