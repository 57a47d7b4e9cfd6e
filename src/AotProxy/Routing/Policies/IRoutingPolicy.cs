namespace AotProxy.Routing.Policies;

// A balancer (`routing.strategy`): picks one candidate of a pool for one request, or -1 when
// no worker may take it. Policies are stateless singletons; whatever they remember lives in
// the pool (cursors, rings) or in the workers' state.
internal interface IRoutingPolicy
{
    string Name { get; }

    int Pick(WorkerPool pool, in RouteContext context);
}
