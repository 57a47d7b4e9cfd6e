namespace AotProxy.Cluster;

// A granted request waiting for its turn on the fleet's workers (SharedVtc.TakeTurnAsync): its
// tenant, the weight and the charge (micro-tokens per weight) the turn puts on the fleet's counter.
internal sealed class FleetTurn(SharedVtcTenant tenant, int weight, long charge)
{
    public SharedVtcTenant Tenant { get; } = tenant;

    public int Weight { get; } = weight;

    public long Charge { get; } = charge;

    // Completed (under SharedVtc's lock) when the turn is given.
    public TaskCompletionSource Given { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
