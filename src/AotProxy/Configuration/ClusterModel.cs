using AotProxy.Cluster;

namespace AotProxy.Configuration;

// [cluster] validated. Store null: the gateway runs alone. Replica "": named at startup from the
// host name and the bound data-plane port (ClusterMembership).
internal sealed record ClusterModel(RedisAddress? Store, string Replica, TimeSpan Heartbeat, TimeSpan MemberTtl, string StoreDown)
{
    public static ClusterModel Off { get; } = new(null, string.Empty, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), StoreDownModes.Local);

    public bool Enabled => Store is not null;
}
