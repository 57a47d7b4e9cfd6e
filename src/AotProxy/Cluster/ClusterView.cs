using System.Collections.Immutable;

namespace AotProxy.Cluster;

// What this replica knows of the cluster after its last heartbeat, replaced whole on each one.
// StoreUp false: the last beat could not reach Redis (Error says why), and Members is the list
// as of the last beat that did (MembersAt).
internal sealed record ClusterView(
    bool StoreUp,
    string? Error,
    DateTimeOffset? StoreDownSince,
    TimeSpan StoreLatency,
    long StoreFailures,
    ImmutableArray<ClusterMember> Members,
    DateTimeOffset? MembersAt)
{
    public static ClusterView Starting { get; } = new(false, "not connected yet", null, TimeSpan.Zero, 0, [], null);

    // The config digest most members run, or null when no one digest has more members than each
    // other (two replicas on two configs: neither is "the" config, so both are flagged).
    public string? MajorityDigest
    {
        get
        {
            var counts = Members.GroupBy(m => m.Digest, StringComparer.Ordinal).Select(g => (Digest: g.Key, Count: g.Count())).OrderByDescending(g => g.Count).ToList();
            return counts.Count switch
            {
                0 => null,
                1 => counts[0].Digest,
                _ => counts[0].Count > counts[1].Count ? counts[0].Digest : null,
            };
        }
    }

    public bool Differs(ClusterMember member)
    {
        ArgumentNullException.ThrowIfNull(member);
        return MajorityDigest is not { } majority || !string.Equals(member.Digest, majority, StringComparison.Ordinal);
    }
}
