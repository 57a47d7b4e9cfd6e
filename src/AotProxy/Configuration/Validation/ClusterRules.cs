using AotProxy.Cluster;

namespace AotProxy.Configuration.Validation;

// [cluster]: the shared store, this replica's name and its heartbeat.
internal static class ClusterRules
{
    // A name is a Redis key part and a column in `aotproxy cluster`: short, printable, no spaces.
    private const int MaxReplicaName = 128;

    // 10 minutes: a member list that old says nothing about who is serving.
    private static readonly TimeSpan MaxMemberTtl = TimeSpan.FromMinutes(10);

    public static ClusterModel Validate(ValidationContext context, ClusterConfig cluster)
    {
        context.Unknown("cluster", cluster.Unknown);
        RedisAddress? store = null;
        if (cluster.RedisUrl.Length > 0)
        {
            if (RedisAddress.TryParse(cluster.RedisUrl, out var address, out var error))
            {
                store = address;
            }
            else
            {
                context.Error("cluster.redis_url", error);
            }
        }

        if (cluster.Replica.Length > MaxReplicaName || cluster.Replica.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c > '~'))
        {
            context.Error("cluster.replica", $"must be at most {MaxReplicaName} printable ASCII characters without spaces (got \"{cluster.Replica}\")");
        }

        var heartbeat = context.Positive("cluster.heartbeat", cluster.Heartbeat);
        var ttl = context.Positive("cluster.member_ttl", cluster.MemberTtl);
        if (ttl > MaxMemberTtl)
        {
            context.Error("cluster.member_ttl", $"must be at most {Duration.Format(MaxMemberTtl)} (got {cluster.MemberTtl})");
        }
        else if (Duration.TryParse(cluster.Heartbeat, out _) && Duration.TryParse(cluster.MemberTtl, out _) && ttl < 2 * heartbeat)
        {
            // One late or lost beat must not drop a live replica from the list.
            context.Error("cluster.member_ttl", $"must be at least twice cluster.heartbeat ({cluster.Heartbeat}), or one late beat drops a live replica (got {cluster.MemberTtl})");
        }

        if (cluster.StoreDown is not (StoreDownModes.Local or StoreDownModes.Closed))
        {
            context.Error("cluster.store_down", $"unknown mode \"{cluster.StoreDown}\"; use \"{StoreDownModes.Local}\" or \"{StoreDownModes.Closed}\"");
        }

        return new ClusterModel(store, cluster.Replica, heartbeat, ttl, cluster.StoreDown);
    }
}
