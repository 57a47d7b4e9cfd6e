using System.Buffers;
using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;

namespace AotProxy.Configuration.Validation;

// What every section's rules share (one rules file per section, as YARP's ConfigValidator
// delegates to its ClusterValidators): the problems found so far, each with its key, and the
// checks that every section uses. Validation goes on after a failure, so that one run of
// `aotproxy check-config` lists every problem in the file; the lines are looked up once at the
// end, in one scan of the file.
internal sealed class ValidationContext(string source)
{
    // (path, message), in the order found.
    private readonly List<(string Path, string Message)> _errors = [];

    // The config file's full path ("<embedded demo.toml>" for the demo): paths in it are relative to it.
    public string Source { get; } = source;

    public bool HasErrors => _errors.Count > 0;

    // Every problem, with the line of its key (or of the nearest written parent).
    public IEnumerable<ConfigError> Errors(TomlKeyMap keys)
    {
        var lines = keys.LinesOf([.. _errors.Select(e => e.Path)]);
        return _errors.Select((e, i) => new ConfigError(lines[i], e.Path, e.Message));
    }

    // Every problem as "path: message", for input that has no lines (the admin API's JSON bodies).
    public IEnumerable<string> Messages() => _errors.Select(e => $"{e.Path}: {e.Message}");

    // Unknown keys are errors: a typo ("max_concurency") must not silently keep the default.
    public void Unknown(string table, Dictionary<string, object?>? unknown)
    {
        if (unknown is null)
        {
            return;
        }

        foreach (var key in unknown.Keys)
        {
            var path = table.Length == 0 ? key : $"{table}.{key}";
            var where = table.Length == 0 ? "at the top level" : $"in {TableLabel(table)}";
            Error(path, $"unknown key {where}");
        }
    }

    public bool Name(KeyPath path, string name, string what, Dictionary<string, int> seen, int index, string table)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            Error(path, $"every {what} needs a non-empty name");
            return false;
        }

        if (seen.TryGetValue(name, out var first))
        {
            Error(path, $"{what} name \"{name}\" is already used by {table}[{first}]");
            return false;
        }

        seen[name] = index;
        return true;
    }

    public IPEndPoint? EndPoint(string path, string text)
    {
        if (ListenAddress.TryParse(text, out var endPoint, out var error))
        {
            return endPoint;
        }

        Error(path, error);
        return null;
    }

    public ImmutableArray<byte> Sha256(KeyPath path, string hex, bool allowEmpty)
    {
        if (hex.Length == 0 && allowEmpty)
        {
            return [];
        }

        var digest = new byte[32];
        if (hex.Length != 64 || Convert.FromHexString(hex, digest, out _, out _) != OperationStatus.Done)
        {
            Error(path, $"must be a SHA-256 as 64 hex characters (got {hex.Length} characters); `aotproxy hash-key KEY` prints it");
            return [];
        }

        return ImmutableCollectionsMarshal.AsImmutableArray(digest);
    }

    public TimeSpan Positive(string path, string text)
    {
        if (!Duration.TryParse(text, out var value))
        {
            Error(path, $"\"{text}\" is not a duration; write a number and a unit: \"250ms\", \"30s\", \"5m\", \"1h\"");
            return TimeSpan.FromSeconds(1);
        }

        if (value <= TimeSpan.Zero)
        {
            Error(path, $"must be greater than zero (got \"{text}\")");
            return TimeSpan.FromSeconds(1);
        }

        return value;
    }

    public double NonNegative(string path, double value)
    {
        if (!(value >= 0) || double.IsInfinity(value))
        {
            Error(path, $"must be a finite number >= 0 (got {Number(value)})");
            return 0;
        }

        return value;
    }

    public static string Number(double value) => value.ToString(CultureInfo.InvariantCulture);

    // rpm and tpm: 0 (unlimited) up to the token bucket's ceiling.
    public void PerMinute(KeyPath path, long value)
    {
        if (value is < 0 or > LimitsModel.MaxPerMinute)
        {
            Error(path, $"must be 0 (unlimited) to {LimitsModel.MaxPerMinute} per minute (got {value})");
        }
    }

    public void AtLeast(KeyPath path, long value, long minimum)
    {
        if (value < minimum)
        {
            Error(path, $"must be at least {minimum} (got {value})");
        }
    }

    public void Error(KeyPath path, string message) => _errors.Add((path.ToString(), message));

    private static string TableLabel(string table)
    {
        var bracket = table.IndexOf('[', StringComparison.Ordinal);
        return bracket < 0 ? $"[{table}]" : $"[[{table[..bracket]}]]";
    }
}
