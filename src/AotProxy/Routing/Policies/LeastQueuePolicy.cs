using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// Join the shortest queue: the fewest waiting requests (scraped vllm:num_requests_waiting plus
// what this gateway sent since that scrape); ties go to fewer in flight.
internal sealed class LeastQueuePolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.LeastQueue;

    public int Pick(WorkerPool pool, in RouteContext context) =>
        LowestScan.Pick(pool, context, static (pool, index, context) => pool.Workers[index].Load(context.Routing.StaleAfter).Waiting);
}
