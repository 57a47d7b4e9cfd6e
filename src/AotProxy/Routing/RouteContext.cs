using AotProxy.Configuration;

namespace AotProxy.Routing;

// Everything one pick reads, gathered once: the snapshot's routing, breaker and scheduler models,
// the request's hashes, the time, the random source, the workers this request already tried
// (bit i = pool index i; a retry never goes back to a worker that failed it), and the worker
// that holds its slot already (admission took one there), if any.
internal readonly struct RouteContext(
    RoutingModel routing,
    CircuitBreakerModel breaker,
    SchedulerModel scheduler,
    RouteRequest request,
    TimeProvider time,
    Random random,
    ulong excluded,
    WorkerState? held = null)
{
    public RoutingModel Routing { get; } = routing;

    public RouteRequest Request { get; } = request;

    public TimeProvider Time { get; } = time;

    public Random Random { get; } = random;

    public ulong Excluded { get; } = excluded;

    // Not tried, routable, and with a free slot: the router never picks a worker at its
    // max_concurrency. The worker that holds this request's slot needs no free slot, and its
    // breaker only not to have opened since: the request has its permit already (perhaps the one
    // half-open trial, which leaves no room for anyone else). Pools larger than 64 workers cannot
    // exclude their tail; a retry there may repeat a worker.
    public bool IsCandidate(WorkerState[] workers, int index)
    {
        var worker = workers[index];
        return (index >= 64 || (Excluded & (1UL << index)) == 0)
            && (ReferenceEquals(worker, held)
                ? worker.TakesRequests && worker.Breaker.State != BreakerState.Open
                : worker.IsRoutable(breaker) && worker.HasRoom(scheduler, Routing.StaleAfter));
    }

    public RouteContext Excluding(int index) =>
        index >= 64 ? this : new RouteContext(Routing, breaker, scheduler, Request, Time, Random, Excluded | (1UL << index), held);

    // Indexes of the workers that may take this request, into `into`; returns how many.
    public int Candidates(WorkerState[] workers, Span<int> into)
    {
        var count = 0;
        for (var i = 0; i < workers.Length; i++)
        {
            if (IsCandidate(workers, i))
            {
                into[count++] = i;
            }
        }

        return count;
    }
}
