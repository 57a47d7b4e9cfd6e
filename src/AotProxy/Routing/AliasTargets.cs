using System.Collections.Immutable;
using AotProxy.Configuration;

namespace AotProxy.Routing;

// Which served model an alias sends a request to: of its targets that some worker serves now,
// the one with the most spare slots (WorkerPool.SpareSlots, the signals admission and the router
// read); on a tie, the one listed first. With no healthy target, the first served one, whose
// admission then queues or refuses the request as it would for that model named directly.
internal static class AliasTargets
{
    public static WorkerPool? Pick(ImmutableArray<string> targets, WorkerSet workers, GatewaySnapshot snapshot)
    {
        WorkerPool? best = null;
        WorkerPool? firstServed = null;
        var bestSpare = int.MinValue;
        foreach (var target in targets)
        {
            if (!workers.Pools.TryGetValue(target, out var pool))
            {
                continue;
            }

            firstServed ??= pool;
            if (pool.Capacity(snapshot) == 0)
            {
                continue;
            }

            var spare = pool.SpareSlots(snapshot);
            if (spare > bestSpare)
            {
                (best, bestSpare) = (pool, spare);
            }
        }

        return best ?? firstServed;
    }
}
