using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A shared store whose announcements are all lost: a real SqliteTenantStore (another writer on the
// same file makes the changes "elsewhere"), and a wait for a change that ends only when the test
// says the interval passed (Elapse), never with an announcement. So the test holds the watch loop
// parked as long as it likes, with no wall clock, and sees the interval it asked for.
internal sealed class RereadOnlyStore(ITenantStore inner) : ISharedTenantStore
{
    private readonly Lock _lock = new();
    private TaskCompletionSource<bool> _wait = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<TimeSpan> _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Description => inner.Description;

    // The interval of the next wait the directory starts (or has started and not seen end).
    public Task<TimeSpan> WaitingAsync()
    {
        lock (_lock)
        {
            return _waiting.Task;
        }
    }

    // Ends the directory's current wait as its timeout would: no change was announced.
    public void Elapse()
    {
        TaskCompletionSource<bool> wait;
        lock (_lock)
        {
            wait = _wait;
            _wait = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        wait.SetResult(false);
    }

    public Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _waiting.TrySetResult(timeout);
            return _wait.Task.WaitAsync(cancellationToken);
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
