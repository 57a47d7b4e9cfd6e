namespace AotProxy.Admin.Contracts;

// One replica of /api/cluster. ConfigDiffers: its config digest is not the one most members run.
internal sealed record ClusterMemberReport(
    string Name,
    bool Self,
    string Version,
    string ConfigDigest,
    long ConfigRevision,
    bool ConfigDiffers,
    long InFlight,
    DateTimeOffset StartedAt,
    DateTimeOffset LastSeen,
    double ExpiresInSeconds,
    double StoreLatencyMs);
