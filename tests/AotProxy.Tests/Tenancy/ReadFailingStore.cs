using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A real SqliteTenantStore whose reads fail while FailReads is set: a store that commits a change
// and then does not answer the read that follows it.
internal sealed class ReadFailingStore(ITenantStore inner) : ITenantStore
{
    public volatile bool FailReads;

    public string Description => inner.Description;

    public StoreContents Load() => FailReads ? throw new TenantStoreException($"{inner.Description} cannot be read: gone") : inner.Load();

    public long Version() => FailReads ? throw new TenantStoreException($"{inner.Description} cannot be read: gone") : inner.Version();

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
