using Prometheus;

namespace AotProxy.Ledger;

// The usage ledger, set at scrape time from LedgerWriter's counters: the hot path pays nothing for them.
internal sealed class LedgerTelemetry
{
    private readonly CollectorRegistry _registry;
    private readonly Counter _rows;
    private readonly Counter _dropped;
    private readonly Gauge _queueDepth;
    private readonly Gauge _batchSeconds;

    public LedgerTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _rows = factory.CreateCounter("llm_gateway_ledger_rows_total", "Rows the usage ledger has written.");
        _dropped = factory.CreateCounter("llm_gateway_ledger_dropped_total", "Ledger rows lost: its queue was full (ledger.queue_capacity) or a write failed. The in-memory totals still count them.");
        _queueDepth = factory.CreateGauge("llm_gateway_ledger_queue_depth", "Ledger rows queued and not yet written.");
        _batchSeconds = factory.CreateGauge("llm_gateway_ledger_batch_seconds", "How long the usage ledger's last batch insert (one transaction) took.");
    }

    public void CollectFrom(LedgerWriter ledger)
    {
        _registry.AddBeforeCollectCallback(() =>
        {
            _rows.IncTo(ledger.Written);
            _dropped.IncTo(ledger.Dropped);
            _queueDepth.Set(ledger.Pending);
            _batchSeconds.Set(ledger.LastBatchDuration.TotalSeconds);
        });
        if (ledger.Shipper is { } shipper)
        {
            // [store] only: a gateway without it shows none of these.
            var factory = Metrics.WithCustomRegistry(_registry);
            var shipped = factory.CreateCounter("llm_gateway_ledger_shipped_total", "Rows shipped from the local ledger file to the shared ledger on Postgres ([store] postgres_url).");
            var spooled = factory.CreateGauge("llm_gateway_ledger_spooled_rows", "Rows in the local ledger file not yet in the shared ledger (they wait while Postgres does not answer).");
            var up = factory.CreateGauge("llm_gateway_ledger_store_up", "1 while the shared ledger's Postgres answers, else 0.");
            _registry.AddBeforeCollectCallback(() =>
            {
                shipped.IncTo(shipper.Shipped);
                spooled.Set(shipper.Spooled);
                up.Set(shipper.StoreUp ? 1 : 0);
            });
        }
    }
}
