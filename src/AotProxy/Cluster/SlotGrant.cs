namespace AotProxy.Cluster;

// What lets a request's worker slot be used fleet-wide (WorkerSlot.Grant): nothing yet (a lone
// gateway, or before SharedWorkerSlots asked), a grant counted in Redis, or one of this replica's
// local share of the worker while the store does not answer.
internal enum SlotGrant : byte
{
    None,
    Shared,
    LocalShare,
}
