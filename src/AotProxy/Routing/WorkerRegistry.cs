using AotProxy.Configuration;
using AotProxy.Hosting.Epoll;

namespace AotProxy.Routing;

// Owns the worker states across reloads: builds the WorkerSet for each snapshot, in which a
// worker whose name and URL stay the same keeps its state (counters, breaker, health, pooled
// connections), and the models served so far carry over. It publishes nothing: GatewayState
// publishes each set together with its config.
// warmsUp: the gateway runs a WorkerMonitor that warms workers up ([routing] warmup); without
// one (tests, benchmarks) nothing would ever end a worker's warm-up, so none starts.
// upstreamLoops: server.transport = "epoll", read at startup (the workers' connections join its loops).
internal sealed class WorkerRegistry(TimeProvider time, CapacitySignal? capacity = null, bool warmsUp = false, EpollClientLoops? upstreamLoops = null)
{
    // The workers of `snapshot`. Same name and URL as in `previous`: the state carries over (its
    // model is updated); new: a new state. Those left out are Retire's.
    public WorkerSet Build(GatewaySnapshot snapshot, WorkerSet previous)
    {
        var next = new WorkerState[snapshot.Workers.Length];
        var warmup = warmsUp && snapshot.Routing.Warmup;
        for (var i = 0; i < next.Length; i++)
        {
            var model = snapshot.Workers[i];
            var existing = Array.Find(previous.Workers, w => w.Model.SameIdentity(model));
            if (existing is null)
            {
                next[i] = new WorkerState(model, time, capacity, upstreamLoops) { WarmsUp = warmup };
                next[i].Joined();
            }
            else
            {
                existing.Update(model);
                existing.WarmsUp = warmup; // a reload that turns warm-up off ends every wait
                next[i] = existing;
            }
        }

        return new WorkerSet(next, previous.Served, previous);
    }

    // After discovery changed a worker's models (drain, health and breakers are read at pick time).
    public static WorkerSet Rebuild(WorkerSet current) => new(current.Workers, current.Served, current);

    // The workers of `previous` that `next` dropped take no new requests, while requests that
    // hold them finish; their idle connections close.
    public static void Retire(WorkerSet previous, WorkerSet next)
    {
        foreach (var old in previous.Workers)
        {
            if (Array.IndexOf(next.Workers, old) < 0)
            {
                old.Removed = true;
                _ = old.Connections.CloseAsync().AsTask();
            }
        }
    }
}
