using AotProxy.Configuration;

namespace AotProxy.Routing;

// Everything one pick reads, gathered once: the snapshot's routing and breaker models, the
// request's hashes, the time, the random source, and the workers this request already tried
// (bit i = pool index i; a retry never goes back to a worker that failed it).
internal readonly struct RouteContext(
    RoutingModel routing,
    CircuitBreakerModel breaker,
    RouteRequest request,
    TimeProvider time,
    Random random,
    ulong excluded)
{
    public RoutingModel Routing { get; } = routing;

    public RouteRequest Request { get; } = request;

    public TimeProvider Time { get; } = time;

    public Random Random { get; } = random;

    public ulong Excluded { get; } = excluded;

    // Pools larger than 64 workers cannot exclude their tail; a retry there may repeat a worker.
    public bool IsCandidate(WorkerState[] workers, int index) =>
        (index >= 64 || (Excluded & (1UL << index)) == 0) && workers[index].IsRoutable(breaker);

    public RouteContext Excluding(int index) =>
        index >= 64 ? this : new RouteContext(Routing, breaker, Request, Time, Random, Excluded | (1UL << index));

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
