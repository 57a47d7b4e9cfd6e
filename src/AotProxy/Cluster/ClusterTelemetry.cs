using AotProxy.Configuration;
using Prometheus;

namespace AotProxy.Cluster;

// The cluster's metrics, registered only with [cluster] (a lone gateway's /metrics is unchanged):
// the decisions store_down took while Redis did not answer, what was re-charged into the shared
// counters when it came back, the store's state as of the last heartbeat and fair share's deferred
// grants (both set at scrape time).
internal sealed class ClusterTelemetry
{
    private readonly Counter.Child _localAdmitted;
    private readonly Counter.Child _localRefused;
    private readonly Counter.Child _closedRefused;
    private readonly Counter _recharged;

    // fairShare: the models' fleet-wide fair share, whose deferred grants are read at scrape time.
    public ClusterTelemetry(CollectorRegistry registry, Func<ClusterView> view, SharedFairShare? fairShare = null)
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
        var deferred = factory.CreateCounter(
            "llm_gateway_cluster_fair_share_deferred_total",
            $"Grants this replica's fairest waiter was refused, and turns on the fleet's workers that had to wait, because the tenant was more than {SharedVtc.SlackMicro / 1_000_000} weighted tokens / its weight of service ahead of the fleet's least-served backlogged tenant (the slot went to a waiter of that tenant here, or to another replica).",
            ["model"]);
        registry.AddBeforeCollectCallback(() =>
        {
            up.Set(view().StoreUp ? 1 : 0);
            foreach (var model in fairShare?.Models ?? [])
            {
                deferred.WithLabels(model.Model.Model).IncTo(model.Deferred);
            }
        });
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
