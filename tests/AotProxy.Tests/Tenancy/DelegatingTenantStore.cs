using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A store that hands every call to a real one. The test doubles beside it change only the calls
// they are about (a read that fails, a wait for a change) and inherit the rest from here.
internal abstract class DelegatingTenantStore(ITenantStore inner) : ITenantStore
{
    public string Description => inner.Description;

    public virtual StoreContents Load() => inner.Load();

    public virtual long Version() => inner.Version();

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
