namespace AotProxy.Admin.Contracts;

// The answer to an issue or a rotation: the only time the key is shown. Id is what lists, the
// ledger's key_id and a revocation name it by.
internal sealed record IssuedKeyResponse(string Id, string Key, string Tenant, string Label, DateTimeOffset Created, DateTimeOffset? ExpiresAt, string Window);
