namespace AotProxy.Admin.Contracts;

// GET /api/cluster. Mode "alone" (no [cluster]): every other field is empty. Mode "cluster":
// Degraded while this replica decides alone (StoreDown says how it serves meanwhile):
// DegradedReason "store_unreachable" while it cannot reach Redis, "resyncing" once Redis answers
// again until the resync lets shared decisions resume (ClusterHealth). Members is the list as of
// MembersAt, the last beat that reached the store.
internal sealed record ClusterResponse(
    string Mode,
    string? Replica,
    string? Store,
    bool Degraded,
    string? DegradedReason,
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
