namespace AotProxy.Admin.Contracts;

// GET /api/tenants/{name}/keys: one issued key, never the key itself. State: "active", "expired"
// (past expires_at or valid_until), "revoked". LastUsed: the last second this replica or the
// store saw it used (null: never).
internal sealed record KeyReport(
    string Id,
    string Tenant,
    string Label,
    string State,
    DateTimeOffset Created,
    DateTimeOffset? ExpiresAt,
    string Window,
    DateTimeOffset? ValidUntil,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? LastUsed);
