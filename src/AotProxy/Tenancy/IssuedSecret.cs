namespace AotProxy.Tenancy;

// A key just issued: its record and the key itself, which the admin API shows once and nothing
// keeps (the store holds its SHA-256).
internal sealed record IssuedSecret(StoredKey Key, string Secret);
