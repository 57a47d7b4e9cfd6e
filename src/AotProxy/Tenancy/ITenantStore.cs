namespace AotProxy.Tenancy;

// Where runtime tenants, issued keys and the audit live: the local SQLite file by default
// (SqliteTenantStore), one PostgreSQL database for every replica when [store] postgres_url is set
// (the next backend, the same surface). Each change is one transaction with its audit row, so a
// change is never made without its record. Every method throws TenantStoreException when the
// store does not answer; none is called on the request path (TenantDirectory calls them from the
// admin API and its flush loop).
internal interface ITenantStore : IDisposable
{
    // What the store names itself in messages ("the SQLite file /var/lib/aotproxy/usage.db").
    string Description { get; }

    // The contents and their Version, read together.
    StoreContents Load();

    // The number of audit rows: every change writes one in its transaction and none is deleted, so
    // it grows with each commit, and an unchanged version means Load would read what it read before
    // (0: no row yet). Not the newest row's id: ids are drawn at insert, and two replicas' changes
    // can commit in the other order, so a read between the commits saw the larger id already and
    // would miss the second commit (PostgresTenantStoreTests.AChangeCommittedAfterALaterNumberedOne_...).
    long Version();

    // false: a tenant of that name exists already.
    bool InsertTenant(StoredTenant tenant, AuditEntry audit);

    // false: no tenant of that name.
    bool UpdateTenant(StoredTenant tenant, AuditEntry audit);

    // The tenant and its keys; false: no tenant of that name.
    bool DeleteTenant(string name, AuditEntry audit);

    // false: a key with that id exists already.
    bool InsertKey(StoredKey key, AuditEntry audit);

    // false: no unrevoked key of that id for that tenant.
    bool RevokeKey(string tenant, string id, long revokedAtMs, AuditEntry audit);

    // The old key gets its valid_until, the new one is inserted; false: no unrevoked old key.
    bool RotateKey(string tenant, string oldId, long validUntilMs, StoredKey next, AuditEntry audit);

    // A change made elsewhere (a drain, a breaker reset, a reload): its audit row alone.
    void AppendAudit(AuditEntry audit);

    void WriteLastUsed(IReadOnlyList<(string Id, long Second)> uses);

    // Newest first, at most `limit`, from sinceMs on.
    IReadOnlyList<AuditEntry> ReadAudit(long sinceMs, int limit);
}
