using System.Globalization;
using System.Text;
using AotProxy.Admission;

namespace AotProxy.Cluster;

// The other replicas' queues of one model, as the last fair-share flush read them (SharedFairShare,
// `aotproxy:queue:{model}`): their waiters per queue level and their grant rate, summed over the
// replicas whose flush is fresh. What makes a queued request's position and the grant rate
// fleet-wide estimates (ModelAdmission.PositionOf, GrantRate). Immutable: a flush replaces it.
// Each replica writes one field, `millirate|level:waiting,level:waiting` (grants per second x 1000
// over the last 10 s; the levels with waiters), or removes it when it has neither.
internal sealed class FleetQueues
{
    public static FleetQueues Empty { get; } = new(0, []);

    // ahead[i]: the others' waiters at levels 0..i (a lower index is granted first).
    private readonly long[] _ahead;

    private FleetQueues(double grantRate, long[] ahead)
    {
        GrantRate = grantRate;
        _ahead = ahead;
    }

    // The other replicas' grants per second, summed.
    public double GrantRate { get; }

    public long Waiting => _ahead.Length == 0 ? 0 : _ahead[^1];

    // The others' waiters at `level` or a more important one (a lower index): those a grant on the
    // fleet's workers would serve before, or (same level) alongside, a request waiting at `level`.
    public long AheadOf(int level) => _ahead.Length == 0 ? 0 : _ahead[Math.Min(level, _ahead.Length - 1)];

    // This replica's field: empty when it has no waiter and granted nothing in the last 10 s.
    public static string Format(ModelAdmission model)
    {
        var rate = (long)Math.Round(model.LocalGrantRate() * 1000);
        var text = new StringBuilder();
        foreach (var level in model.BusyLevels())
        {
            text.Append(text.Length == 0 ? '|' : ',').Append(level.Index).Append(':').Append(level.Waiting);
        }

        return rate == 0 && text.Length == 0 ? string.Empty : rate.ToString(CultureInfo.InvariantCulture) + text.ToString();
    }

    // The others' fields, summed; a field that does not parse counts for nothing.
    public static FleetQueues Parse(IEnumerable<string> fields)
    {
        var rate = 0L;
        var waiting = new long[10];
        var levels = 0;
        foreach (var field in fields)
        {
            var parts = field.Split('|');
            if (!long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var millirate))
            {
                continue;
            }

            rate += millirate;
            foreach (var pair in parts.Length > 1 ? parts[1].Split(',') : [])
            {
                var colon = pair.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0
                    && int.TryParse(pair.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var level)
                    && long.TryParse(pair.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var count)
                    && level < 1024)
                {
                    if (level >= waiting.Length)
                    {
                        Array.Resize(ref waiting, level + 1);
                    }

                    waiting[level] += count;
                    levels = Math.Max(levels, level + 1);
                }
            }
        }

        var ahead = new long[levels];
        for (var i = 0; i < levels; i++)
        {
            ahead[i] = (i == 0 ? 0 : ahead[i - 1]) + waiting[i];
        }

        return rate == 0 && levels == 0 ? Empty : new FleetQueues(rate / 1000.0, ahead);
    }
}
