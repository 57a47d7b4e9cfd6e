using System.Collections.Immutable;

namespace AotProxy.Configuration;

// Per-class protection when the fleet degrades: [scheduler] protection_window and
// protection_min_samples, and the classes in the order they are shed, loosest first: by
// ttft_tolerance, then max_error_rate (0, none, counts as unbounded), then priority (the less
// important first). The last, the strictest, is the one protected and never shed. Off (an empty
// order) when no class has a tolerance or there is only one class.
internal sealed record ProtectionModel(TimeSpan Window, int MinSamples, ImmutableArray<ClassModel> Order)
{
    // A class is un-shed below 0.8 x the tolerances it was shed for (hysteresis).
    public const double Hysteresis = 0.8;

    // Hysteresis x this is 1: below it, recovery would need a TTFT under the baseline itself.
    public const double MinTtftTolerance = 1.25;

    public static ProtectionModel Off { get; } = new(TimeSpan.FromSeconds(30), 20, []);

    public bool IsOn => !Order.IsEmpty;

    public ProtectionModel For(ImmutableArray<ClassModel> classes)
    {
        if (classes.Length < 2 || !classes.Any(c => c.MaxErrorRate > 0 || c.TtftTolerance > 0))
        {
            return this with { Order = [] };
        }

        return this with
        {
            Order = [.. classes.OrderByDescending(c => Unbounded(c.TtftTolerance)).ThenByDescending(c => Unbounded(c.MaxErrorRate)).ThenByDescending(c => c.Priority)],
        };
    }

    private static double Unbounded(double tolerance) => tolerance == 0 ? double.PositiveInfinity : tolerance;
}
