namespace AotProxy.Cluster;

// Whether this replica's shared decisions are the store's (ClusterMembership.Health): what
// /api/cluster's degraded_reason and /ready say. Not healthy, the replica serves by store_down.
internal enum ClusterHealth : byte
{
    Healthy,
    StoreUnreachable, // the last heartbeat could not reach the store
    Resyncing,        // the store answers, but the resync after its outage has not found the epoch settled (StoreDownPolicy.Gated)
}
