using System.Collections.Immutable;
using AotProxy.Configuration;

namespace AotProxy.Routing;

// Which served model an alias sends a request to: of its targets that some worker serves now,
// the one with the most room (WorkerPool.FreeShare, the rule model "auto" scores by too); on a
// tie, the one listed first. With no target that takes requests, the first served one, whose
// admission then queues or refuses the request as it would for that model named directly.
internal static class AliasTargets
{
    public static WorkerPool? Pick(ImmutableArray<string> targets, WorkerSet workers, GatewaySnapshot snapshot)
    {
        WorkerPool? best = null;
        WorkerPool? firstServed = null;
        var bestRoom = WorkerPool.NoRoom;
        foreach (var target in targets)
        {
            if (!workers.Pools.TryGetValue(target, out var pool))
            {
                continue;
            }

            firstServed ??= pool;
            var room = pool.FreeShare(snapshot);
            if (room > bestRoom)
            {
                (best, bestRoom) = (pool, room);
            }
        }

        return best ?? firstServed;
    }
}
