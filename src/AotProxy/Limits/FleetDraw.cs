namespace AotProxy.Limits;

// How a stream (stream_budget_cutoff) draws on its tenant's fleet-wide budgets ([cluster]):
// StreamBudget's mode, changed only by the answers to its block leases.
internal enum FleetDraw : byte
{
    None,      // no [cluster], or admitted alone (store_down): this replica's own view decides
    Blocks,    // each chunk takes a token of a block leased from the store
    Exhausted, // the store had no token left for another block: the next chunk is cut
    Closed,    // the store did not answer and store_down = "closed": the next chunk is cut
}
