using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;

namespace AotProxy.Configuration;

// Either a snapshot or at least one error, never both: an invalid file is rejected as a whole.
internal sealed class ConfigLoadResult
{
    private ConfigLoadResult(GatewaySnapshot? snapshot, ImmutableArray<ConfigError> errors)
    {
        Snapshot = snapshot;
        Errors = errors;
    }

    public GatewaySnapshot? Snapshot { get; }

    // Sorted by line; empty when valid.
    public ImmutableArray<ConfigError> Errors { get; }

    [MemberNotNullWhen(true, nameof(Snapshot))]
    public bool IsValid => Snapshot is not null;

    public static ConfigLoadResult Success(GatewaySnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return new(snapshot, []);
    }

    public static ConfigLoadResult Failure(IEnumerable<ConfigError> errors)
    {
        var sorted = errors.OrderBy(e => e.Line).ToImmutableArray();
        if (sorted.IsEmpty)
        {
            throw new ArgumentException("A failed load needs at least one error.", nameof(errors));
        }

        return new(null, sorted);
    }

    public static ConfigLoadResult Failure(ConfigError error) => Failure([error]);

    public override string ToString() =>
        IsValid ? $"valid (revision {Snapshot.Revision})" : string.Join(Environment.NewLine, Errors);
}
