using System.Diagnostics;
using AotProxy.Load.Profiles;

namespace AotProxy.Load.Scheduling;

// Which [[mix]] entry the next request is. Deterministic and exact: weights 70/20/10 give exactly
// 70/20/10 in every 100 consecutive requests, interleaved (smooth weighted round robin, as nginx
// does), so a short CI run still sends every entry. An entry with a start or stop takes its turns
// only inside that part of the run; outside it the turn is skipped (-1), so the other entries
// keep their own rates. Safe from any thread.
internal sealed class MixPicker
{
    private readonly int[] _sequence;
    private readonly long[] _startTicks;
    private readonly long[] _stopTicks;
    private long _next = -1;

    public MixPicker(IReadOnlyList<MixEntry> mix, double durationScale = 1)
    {
        ArgumentNullException.ThrowIfNull(mix);
        ArgumentOutOfRangeException.ThrowIfZero(mix.Count);
        var total = mix.Sum(m => m.Weight);
        _sequence = new int[total];
        var current = new int[mix.Count];
        for (var n = 0; n < total; n++)
        {
            var best = 0;
            for (var i = 0; i < mix.Count; i++)
            {
                current[i] += mix[i].Weight;
                if (current[i] > current[best])
                {
                    best = i;
                }
            }

            current[best] -= total;
            _sequence[n] = best;
        }

        _startTicks = [.. mix.Select(m => Ticks(m.Start, durationScale))];
        _stopTicks = [.. mix.Select(m => m.Stop is { } stop ? Ticks(stop, durationScale) : long.MaxValue)];
    }

    // The next entry in the sequence, whatever the time.
    public int Next() => _sequence[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)_sequence.Length)];

    // The next entry, or -1 when it is out of its part of the run at `elapsedTicks` (Stopwatch
    // ticks since the schedule's start).
    public int Next(long elapsedTicks)
    {
        var mix = Next();
        return elapsedTicks >= _startTicks[mix] && elapsedTicks < _stopTicks[mix] ? mix : -1;
    }

    // The next entry that is sending at `elapsedTicks`, or -1 when none is (a closed loop then waits).
    public int NextActive(long elapsedTicks)
    {
        for (var tries = 0; tries < _sequence.Length; tries++)
        {
            if (Next(elapsedTicks) is var mix and >= 0)
            {
                return mix;
            }
        }

        return -1;
    }

    private static long Ticks(TimeSpan offset, double durationScale) =>
        (long)Math.Round(offset.TotalSeconds * durationScale * Stopwatch.Frequency);
}
