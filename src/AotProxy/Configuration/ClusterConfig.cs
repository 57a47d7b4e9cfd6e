using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [cluster]: replicas that share one Redis. Without redis_url the gateway runs alone, as before.
internal sealed record ClusterConfig
{
    // redis://[user:password@]host[:port][/db], or rediss:// for TLS. "": no cluster.
    public string RedisUrl { get; init; } = string.Empty;

    // This replica's name among the members. "": the host name and the data-plane port.
    public string Replica { get; init; } = string.Empty;

    // How often this replica writes its member record. 1 s: a member list at most a second old.
    public string Heartbeat { get; init; } = "1s";

    // How long a record outlives its last heartbeat: a killed replica leaves the list this long
    // after its last beat. 5 s: four lost beats before a live replica is dropped.
    public string MemberTtl { get; init; } = "5s";

    // What a replica does while Redis cannot be reached: "local" or "closed" (StoreDownModes).
    public string StoreDown { get; init; } = StoreDownModes.Local;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
