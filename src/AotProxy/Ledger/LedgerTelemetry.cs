using Prometheus;
using static AotProxy.Gateway.TelemetrySeries;

namespace AotProxy.Ledger;

// The usage ledger, set at scrape time from LedgerWriter's counters: the hot path pays nothing for
// them. Its four series are there from the start (0 until CollectFrom names the ledger, and with
// the ledger off); the shipper's only with [store].
internal sealed class LedgerTelemetry
{
    private readonly CollectorRegistry _registry;
    private volatile LedgerWriter? _ledger;

    public LedgerTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        CounterFrom(registry, "llm_gateway_ledger_rows_total", "Rows the usage ledger has written.", () => _ledger?.Written ?? 0);
        CounterFrom(registry, "llm_gateway_ledger_dropped_total", "Ledger rows lost: its queue was full (ledger.queue_capacity) or a write failed. The in-memory totals still count them.", () => _ledger?.Dropped ?? 0);
        GaugeFrom(registry, "llm_gateway_ledger_queue_depth", "Ledger rows queued and not yet written.", () => _ledger?.Pending ?? 0);
        GaugeFrom(registry, "llm_gateway_ledger_batch_seconds", "How long the usage ledger's last batch insert (one transaction) took.", () => _ledger?.LastBatchDuration.TotalSeconds ?? 0);
    }

    public void CollectFrom(LedgerWriter ledger)
    {
        _ledger = ledger;
        if (ledger.Shipper is { } shipper)
        {
            // [store] only: a gateway without it shows none of these.
            CounterFrom(_registry, "llm_gateway_ledger_shipped_total", "Rows shipped from the local ledger file to the shared ledger on Postgres ([store] postgres_url).", () => shipper.Shipped);
            GaugeFrom(_registry, "llm_gateway_ledger_spooled_rows", "Rows in the local ledger file not yet in the shared ledger (they wait while Postgres does not answer).", () => shipper.Spooled);
            GaugeFrom(_registry, "llm_gateway_ledger_store_up", "1 while the shared ledger's Postgres answers, else 0.", () => shipper.StoreUp ? 1 : 0);
        }
    }
}
