namespace AotProxy.Tenancy;

// A tenant store that other replicas write too (PostgresTenantStore): TenantDirectory waits on it
// for their changes and reads the store again when one is announced, or when `timeout` passes
// without one (the safety net for an announcement lost with a connection).
internal interface ISharedTenantStore : ITenantStore
{
    // true: a change was announced; false: `timeout` passed. Throws TenantStoreException when the
    // store does not answer (the next call connects again).
    Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken);
}
