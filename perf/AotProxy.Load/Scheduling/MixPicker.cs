using AotProxy.Load.Profiles;

namespace AotProxy.Load.Scheduling;

// Which [[mix]] entry the next request is. Deterministic and exact: weights 70/20/10 give exactly
// 70/20/10 in every 100 consecutive requests, interleaved (smooth weighted round robin, as nginx
// does), so a short CI run still sends every entry. Safe from any thread.
internal sealed class MixPicker
{
    private readonly int[] _sequence;
    private long _next = -1;

    public MixPicker(IReadOnlyList<MixEntry> mix)
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
    }

    public int Next() => _sequence[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)_sequence.Length)];
}
