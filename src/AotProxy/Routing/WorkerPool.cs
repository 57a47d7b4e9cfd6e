namespace AotProxy.Routing;

// The workers that serve one model. Rebuilt whenever the worker set changes; the round-robin
// cursor starting again at a reload does no harm.
internal sealed class WorkerPool(string model, WorkerState[] workers)
{
    private uint _next;

    public string Model { get; } = model;

    public WorkerState[] Workers { get; } = workers;

    // Round robin over the routable workers. The routing issue replaces this with P2C over
    // live metrics; the pool stays the unit it picks from.
    public WorkerState? PickRoundRobin()
    {
        var workers = Workers;
        var start = Interlocked.Increment(ref _next);
        for (var i = 0; i < workers.Length; i++)
        {
            var candidate = workers[(int)((start + (uint)i) % (uint)workers.Length)];
            if (candidate.IsRoutable)
            {
                return candidate;
            }
        }

        return null;
    }
}
