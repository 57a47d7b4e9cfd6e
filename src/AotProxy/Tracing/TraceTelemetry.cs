using Prometheus;

namespace AotProxy.Tracing;

// What trace export did with the spans it was given: exported, or dropped because the queue was
// full (the receiver slower than the traffic, or away) or the receiver refused or never answered.
// Every series exists from the start, so that an alert has a zero to rise from.
internal sealed class TraceTelemetry
{
    public const string QueueFull = "queue_full";
    public const string ExportFailed = "export_failed";

    private readonly Counter _exported;
    private readonly Counter.Child _queueFull;
    private readonly Counter.Child _exportFailed;

    public TraceTelemetry(CollectorRegistry registry)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        _exported = factory.CreateCounter("llm_gateway_trace_spans_exported_total", "Spans the OTLP receiver accepted.");
        var dropped = factory.CreateCounter("llm_gateway_trace_spans_dropped_total", "Spans not exported, by reason: queue_full (telemetry.max_queued_spans) or export_failed.", ["reason"]);
        _queueFull = dropped.WithLabels(QueueFull);
        _exportFailed = dropped.WithLabels(ExportFailed);
    }

    public void CountExported(int spans) => _exported.Inc(spans);

    public void CountQueueFull() => _queueFull.Inc();

    public void CountExportFailed(int spans) => _exportFailed.Inc(spans);
}
