using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// Consistent hashing with bounded loads (Mirrokni et al., 2018): the key's place on the ring
// names a worker; walking clockwise skips workers that may not take the request and those
// already at ceil((1 + hash_load_factor) × mean in-flight), so one hot key cannot swamp a worker.
// A request without a key (no header, no `user`, no prompt) goes to the least-connected worker.
internal sealed class ConsistentHashPolicy(LeastConnectionsPolicy fallback) : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.ConsistentHash;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        var key = context.Request.AffinityKey;
        if (key == 0)
        {
            return fallback.Pick(pool, context);
        }

        var workers = pool.Workers;
        var candidates = 0;
        long inFlight = 0;
        for (var i = 0; i < workers.Length; i++)
        {
            if (context.IsCandidate(workers, i))
            {
                candidates++;
                inFlight += workers[i].InFlight;
            }
        }

        if (candidates == 0)
        {
            return -1;
        }

        // +1: the request being placed. Some candidate is always below this bound.
        var bound = Math.Ceiling((1 + context.Routing.HashLoadFactor) * (inFlight + 1) / candidates);
        var ring = pool.Ring(context.Routing.VirtualNodes);
        var start = ring.Start(key);
        for (var step = 0; step < ring.Length; step++)
        {
            var index = ring.OwnerAt(start, step);
            if (context.IsCandidate(workers, index) && workers[index].InFlight < bound)
            {
                return index;
            }
        }

        return fallback.Pick(pool, context);
    }
}
