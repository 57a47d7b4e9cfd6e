using System.Globalization;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// One replica's record as it writes it on each heartbeat and the others read it back.
// Instance tells two processes apart that were given the same name (a copied config).
internal sealed record ClusterMember(
    string Name,
    string Instance,
    string Version,
    string Digest,
    long Revision,
    long InFlight,
    DateTimeOffset Started,
    DateTimeOffset LastSeen,
    TimeSpan StoreLatency,
    TimeSpan ExpiresIn)
{
    private static readonly RedisValue NameField = "name";
    private static readonly RedisValue InstanceField = "instance";
    private static readonly RedisValue VersionField = "version";
    private static readonly RedisValue DigestField = "config_digest";
    private static readonly RedisValue RevisionField = "config_revision";
    private static readonly RedisValue InFlightField = "in_flight";
    private static readonly RedisValue StartedField = "started_ms";
    private static readonly RedisValue LastSeenField = "last_seen_ms";
    private static readonly RedisValue LatencyField = "store_latency_us";

    public HashEntry[] ToHash() =>
    [
        new(NameField, Name),
        new(InstanceField, Instance),
        new(VersionField, Version),
        new(DigestField, Digest),
        new(RevisionField, Revision),
        new(InFlightField, InFlight),
        new(StartedField, Started.ToUnixTimeMilliseconds()),
        new(LastSeenField, LastSeen.ToUnixTimeMilliseconds()),
        new(LatencyField, (long)StoreLatency.TotalMicroseconds),
    ];

    // null: the record expired (or was never complete) between listing its name and reading it.
    public static ClusterMember? FromHash(HashEntry[] entries, TimeSpan? expiresIn)
    {
        if (entries.Length == 0)
        {
            return null;
        }

        var fields = entries.ToDictionary(e => (string)e.Name!, e => e.Value, StringComparer.Ordinal);
        string Text(RedisValue field) => fields.TryGetValue((string)field!, out var value) ? (string?)value ?? string.Empty : string.Empty;
        long Number(RedisValue field) => long.TryParse(Text(field), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : 0;
        var name = Text(NameField);
        return name.Length == 0 ? null : new ClusterMember(
            name,
            Text(InstanceField),
            Text(VersionField),
            Text(DigestField),
            Number(RevisionField),
            Number(InFlightField),
            DateTimeOffset.FromUnixTimeMilliseconds(Number(StartedField)),
            DateTimeOffset.FromUnixTimeMilliseconds(Number(LastSeenField)),
            TimeSpan.FromMicroseconds(Number(LatencyField)),
            expiresIn ?? TimeSpan.Zero);
    }
}
