using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A shared store (a real PostgresTenantStore) without its re-read safety net: the directory's wait
// for a change is handed on with an hour for RereadInterval, so another replica's change reaches the
// directory only through its announcement (the NOTIFY in the change's own commit), or through a
// failed wait's reconnect, which is counted. What the directory asked for is kept: the mechanism
// behind "a revoke holds on every replica within 1 s" (SPEC), read without a wall clock.
internal sealed class AnnouncedOnlyStore(ISharedTenantStore inner) : ISharedTenantStore
{
    private static readonly TimeSpan NoReread = TimeSpan.FromHours(1);

    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _askedTicks;
    private int _waits;
    private int _failures;

    // The interval the directory would have re-read the store after, with no announcement.
    public TimeSpan Asked => TimeSpan.FromTicks(Interlocked.Read(ref _askedTicks));

    // Waits that ended in a TenantStoreException (after which the directory reconnects and reads).
    public int Failures => Volatile.Read(ref _failures);

    // Completed when the directory waits for a change on a listening connection: its first wait
    // sets up the LISTEN and returns at once, so from its second one on, changes are announced to it.
    public Task Listening => _listening.Task;

    public string Description => inner.Description;

    public async Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _askedTicks, timeout.Ticks);
        if (Interlocked.Increment(ref _waits) == 2)
        {
            _listening.TrySetResult();
        }

        try
        {
            return await inner.WaitForChangeAsync(NoReread, cancellationToken);
        }
        catch (TenantStoreException)
        {
            Interlocked.Increment(ref _failures);
            throw;
        }
    }

    public StoreContents Load() => inner.Load();

    public long Version() => inner.Version();

    public bool InsertTenant(StoredTenant tenant, AuditEntry audit) => inner.InsertTenant(tenant, audit);

    public bool UpdateTenant(StoredTenant tenant, AuditEntry audit) => inner.UpdateTenant(tenant, audit);

    public bool DeleteTenant(string name, AuditEntry audit) => inner.DeleteTenant(name, audit);

    public bool InsertKey(StoredKey key, AuditEntry audit) => inner.InsertKey(key, audit);

    public bool RevokeKey(string tenant, string id, long revokedAtMs, AuditEntry audit) => inner.RevokeKey(tenant, id, revokedAtMs, audit);

    public bool RotateKey(string tenant, string oldId, long validUntilMs, StoredKey next, AuditEntry audit) => inner.RotateKey(tenant, oldId, validUntilMs, next, audit);

    public void AppendAudit(AuditEntry audit) => inner.AppendAudit(audit);

    public void WriteLastUsed(IReadOnlyList<(string Id, long Second)> uses) => inner.WriteLastUsed(uses);

    public IReadOnlyList<AuditEntry> ReadAudit(long sinceMs, int limit) => inner.ReadAudit(sinceMs, limit);

    public void Dispose() => inner.Dispose();
}
