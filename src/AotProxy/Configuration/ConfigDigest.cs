using System.Security.Cryptography;
using System.Text;

namespace AotProxy.Configuration;

// The config's fingerprint as replicas compare it in /api/cluster: SHA-256 of the file's lines
// that every replica of one deployment must share (tenants, limits, workers, classes, ...), so
// that one replica on another policy shows. Left out: what differs by replica by design ([server]:
// its listeners; [ledger]: its own file; [cluster].replica: its name), blank lines and comment
// lines. 12 hex digits (48 bits): a chance collision among a handful of configs is ~1e-14.
internal static class ConfigDigest
{
    private const int HexDigits = 12;

    public static string Of(string toml, TomlKeyMap map)
    {
        ArgumentNullException.ThrowIfNull(toml);
        ArgumentNullException.ThrowIfNull(map);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var headers = map.Headers;
        var next = 0;
        var group = string.Empty;
        var number = 0;
        var buffer = new byte[1024];
        foreach (var raw in toml.AsSpan().EnumerateLines())
        {
            if (next < headers.Count && headers[next].Line == number)
            {
                group = headers[next++].Group;
            }

            number++;
            var line = raw.Trim();
            if (line.IsEmpty || line[0] == '#' || PerReplica(group, line))
            {
                continue;
            }

            if (Encoding.UTF8.GetMaxByteCount(line.Length) > buffer.Length)
            {
                buffer = new byte[Encoding.UTF8.GetMaxByteCount(line.Length)];
            }

            hash.AppendData(buffer, 0, Encoding.UTF8.GetBytes(line, buffer));
            hash.AppendData("\n"u8);
        }

        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        hash.GetHashAndReset(digest);
        return Convert.ToHexStringLower(digest)[..HexDigits];
    }

    private static bool PerReplica(string group, ReadOnlySpan<char> line) => group switch
    {
        "server" or "ledger" => true,
        "cluster" => IsKey(line, "replica"),
        "" => line.StartsWith("server.", StringComparison.Ordinal) || line.StartsWith("ledger.", StringComparison.Ordinal) || line.StartsWith("cluster.replica", StringComparison.Ordinal),
        _ => false,
    };

    private static bool IsKey(ReadOnlySpan<char> line, string key) =>
        line.StartsWith(key, StringComparison.Ordinal) && line[key.Length..].TrimStart() is ['=', ..];
}
