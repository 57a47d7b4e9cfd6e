using AotProxy.Configuration;
using Prometheus;

namespace AotProxy.Cluster;

// The cluster's metrics, registered only with [cluster] (a lone gateway's /metrics is unchanged):
// the decisions store_down took while Redis did not answer, what was re-charged into the shared
// counters when it came back, and the store's state as of the last heartbeat (set at scrape time).
internal sealed class ClusterTelemetry
{
    private readonly Counter.Child _localAdmitted;
    private readonly Counter.Child _localRefused;
    private readonly Counter.Child _closedRefused;
    private readonly Counter _recharged;

    public ClusterTelemetry(CollectorRegistry registry, Func<ClusterView> view)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        var decisions = factory.CreateCounter(
            "llm_gateway_cluster_store_down_decisions_total",
            "Requests of limited tenants decided without the cluster store (unreachable), by store_down mode (local, closed) and outcome (admitted within this replica's 1/N share, refused).",
            ["mode", "outcome"]);
        _localAdmitted = decisions.WithLabels(StoreDownModes.Local, "admitted");
        _localRefused = decisions.WithLabels(StoreDownModes.Local, "refused");
        _closedRefused = decisions.WithLabels(StoreDownModes.Closed, "refused");
        _recharged = factory.CreateCounter(
            "llm_gateway_cluster_recharged_requests_total",
            "Requests this replica admitted in the last 60 s that it charged into the shared windows when the store answered again: those admitted while it was down, or all of them after the store restarted empty (reason: down, reseed).",
            ["reason"]);
        var up = factory.CreateGauge("llm_gateway_cluster_store_up", "1 while this replica's last heartbeat reached the cluster store, else 0 (serving by store_down).");
        registry.AddBeforeCollectCallback(() => up.Set(view().StoreUp ? 1 : 0));
    }

    public void CountDecision(StoreDownOutcome outcome)
    {
        var counter = outcome switch
        {
            StoreDownOutcome.Admitted => _localAdmitted,
            StoreDownOutcome.Refused => _localRefused,
            _ => _closedRefused,
        };
        counter.Inc();
    }

    public void CountRecharged(string reason, long requests) => _recharged.WithLabels(reason).Inc(requests);
}
