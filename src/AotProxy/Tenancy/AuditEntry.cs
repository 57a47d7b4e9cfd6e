namespace AotProxy.Tenancy;

// One change made through the admin API: when (Unix ms), who (the admin token's id), what
// (Action: "tenant.create", "key.issue", ...), on what (a tenant's name, "tenant/key id"), and
// the new settings. Never key material: a key's id is the first 8 hex digits of its SHA-256.
internal sealed record AuditEntry(long AtMs, string Actor, string Action, string Target, string Detail);
