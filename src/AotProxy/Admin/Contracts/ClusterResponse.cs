namespace AotProxy.Admin.Contracts;

// GET /api/cluster. Mode "alone" (no [cluster]): every other field is empty. Mode "cluster":
// Degraded while this replica cannot reach Redis (StoreDown says how it serves meanwhile), and
// Members is the list as of MembersAt, the last beat that reached the store.
internal sealed record ClusterResponse(
    string Mode,
    string? Replica,
    string? Store,
    bool Degraded,
    string? StoreDown,
    string? Error,
    DateTimeOffset? DegradedSince,
    long StoreFailures,
    double StoreLatencyMs,
    string? ConfigDigest,
    string? MajorityConfigDigest,
    double HeartbeatSeconds,
    double MemberTtlSeconds,
    DateTimeOffset? MembersAt,
    ClusterMemberReport[] Members);
