using System.Security.Cryptography;
using AotProxy.Identity;
using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// ITenantStore's contract, which every backend keeps: SqliteTenantStoreTests and
// PostgresTenantStoreTests run these against the real file and the real server.
public abstract class TenantStoreContract
{
    // The backend's store on the same place each time: a second call is a reopen.
    internal abstract ITenantStore Open();

    [Fact]
    public void Tenants_AreCreatedUpdatedAndDeleted_EachWithItsAuditRow_AndSurviveAReopen()
    {
        using (var store = Open())
        {
            var acme = StoredTenant.Defaults("acme", 1_000) with { Class = "gold", Models = ["a", "b"], Rpm = 60, BudgetUsd = 12.5 };
            Assert.True(store.InsertTenant(acme, Audit("tenant.create", "acme", at: 1_000)));
            Assert.False(store.InsertTenant(acme, Audit("tenant.create", "acme", at: 1_001)));
            Assert.True(store.InsertTenant(StoredTenant.Defaults("beta", 2_000), Audit("tenant.create", "beta", at: 2_000)));
            Assert.True(store.UpdateTenant(acme with { Tpm = 1_000, UpdatedMs = 3_000 }, Audit("tenant.update", "acme", at: 3_000)));
            Assert.False(store.UpdateTenant(StoredTenant.Defaults("nobody", 0), Audit("tenant.update", "nobody", at: 3_500)));
            Assert.True(store.DeleteTenant("beta", Audit("tenant.delete", "beta", at: 4_000)));
            Assert.False(store.DeleteTenant("beta", Audit("tenant.delete", "beta", at: 4_001)));
        }

        using var reopened = Open();
        var tenant = Assert.Single(reopened.Load().Tenants);
        Assert.Equal(("acme", "gold", 60L, 1_000L, 12.5, 1_000L, 3_000L), (tenant.Name, tenant.Class, tenant.Rpm, tenant.Tpm, tenant.BudgetUsd, tenant.CreatedMs, tenant.UpdatedMs));
        Assert.Equal(["a", "b"], tenant.Models.ToArray());
        // Only the changes that were made: newest first.
        Assert.Equal(["tenant.delete", "tenant.update", "tenant.create", "tenant.create"], reopened.ReadAudit(0, 100).Select(a => a.Action));
        Assert.Equal(["beta", "acme", "beta", "acme"], reopened.ReadAudit(0, 100).Select(a => a.Target));
        Assert.Single(reopened.ReadAudit(3_500, 100));
        Assert.Equal(2, reopened.ReadAudit(0, 2).Count);
    }

    // Issue 20's two tenant keys: cache_salt's three states (on, off, the class's) and
    // stream_budget_cutoff survive an insert, an update and a reopen.
    [Fact]
    public void CacheSaltAndStreamBudgetCutoff_ArePersisted_AndAbsentSaltStaysTheClasss()
    {
        using (var store = Open())
        {
            var salted = StoredTenant.Defaults("salted", 1) with { CacheSalt = true, StreamBudgetCutoff = true, BudgetTokens = 500 };
            Assert.True(store.InsertTenant(salted, Audit("tenant.create", "salted", 1)));
            Assert.True(store.InsertTenant(StoredTenant.Defaults("plain", 2), Audit("tenant.create", "plain", 2)));
            Assert.True(store.InsertTenant(StoredTenant.Defaults("unsalted", 3) with { CacheSalt = false }, Audit("tenant.create", "unsalted", 3)));
            Assert.True(store.UpdateTenant(salted with { StreamBudgetCutoff = false, UpdatedMs = 4 }, Audit("tenant.update", "salted", 4)));
            Assert.True(store.UpdateTenant(salted with { StreamBudgetCutoff = true, CacheSalt = null, UpdatedMs = 5 }, Audit("tenant.update", "salted", 5)));
        }

        using var reopened = Open();
        var tenants = reopened.Load().Tenants.ToDictionary(t => t.Name);
        Assert.Equal(((bool?)null, true), (tenants["salted"].CacheSalt, tenants["salted"].StreamBudgetCutoff));
        Assert.Equal(((bool?)null, false), (tenants["plain"].CacheSalt, tenants["plain"].StreamBudgetCutoff));
        Assert.Equal(((bool?)false, false), (tenants["unsalted"].CacheSalt, tenants["unsalted"].StreamBudgetCutoff));
    }

    // Issue 21's response_cache: on or off survives an insert, an update and a reopen.
    [Fact]
    public void ResponseCache_IsPersisted_AndAbsentIsOff()
    {
        using (var store = Open())
        {
            var cached = StoredTenant.Defaults("cached", 1) with { ResponseCache = true };
            Assert.True(store.InsertTenant(cached, Audit("tenant.create", "cached", 1)));
            Assert.True(store.InsertTenant(StoredTenant.Defaults("plain", 2), Audit("tenant.create", "plain", 2)));
            Assert.True(store.InsertTenant(StoredTenant.Defaults("turned", 3) with { ResponseCache = true }, Audit("tenant.create", "turned", 3)));
            Assert.True(store.UpdateTenant(StoredTenant.Defaults("turned", 3) with { UpdatedMs = 4 }, Audit("tenant.update", "turned", 4)));
            Assert.True(store.UpdateTenant(cached with { Rpm = 5, UpdatedMs = 5 }, Audit("tenant.update", "cached", 5)));
        }

        using var reopened = Open();
        var tenants = reopened.Load().Tenants.ToDictionary(t => t.Name, t => t.ResponseCache);
        Assert.Equal((true, false, false), (tenants["cached"], tenants["plain"], tenants["turned"]));
    }

    [Fact]
    public void Keys_AreIssuedRevokedAndRotated_AndDeletingTheTenantDeletesItsKeys()
    {
        using var store = Open();
        store.InsertTenant(StoredTenant.Defaults("acme", 0), Audit("tenant.create", "acme", 0));
        var first = Key("k1", "acme", "sk-one") with { ExpiresAtMs = 9_000, Window = new KeyWindow(540, 1020) };
        Assert.True(store.InsertKey(first, Audit("key.issue", "acme/k1", 1)));
        Assert.False(store.InsertKey(first, Audit("key.issue", "acme/k1", 2)));
        Assert.True(store.RotateKey("acme", "k1", 5_000, Key("k2", "acme", "sk-two"), Audit("key.rotate", "acme/k1", 3)));
        Assert.False(store.RotateKey("acme", "nope", 5_000, Key("k3", "acme", "sk-three"), Audit("key.rotate", "acme/nope", 4)));
        Assert.True(store.RevokeKey("acme", "k2", 6_000, Audit("key.revoke", "acme/k2", 5)));
        Assert.False(store.RevokeKey("acme", "k2", 6_001, Audit("key.revoke", "acme/k2", 6)));
        Assert.False(store.RevokeKey("other", "k1", 6_002, Audit("key.revoke", "other/k1", 7)));
        store.WriteLastUsed([("k1", 77), ("k2", 88)]);
        store.WriteLastUsed([("k1", 70)]); // older than what is stored: kept

        var keys = store.Load().Keys.ToDictionary(k => k.Id);
        Assert.Equal(2, keys.Count);
        Assert.Equal((9_000L, (long?)5_000, (long?)null, (long?)77, 5_000L), (keys["k1"].ExpiresAtMs!.Value, keys["k1"].ValidUntilMs, keys["k1"].RevokedAtMs, keys["k1"].LastUsedSecond, keys["k1"].NotAfterMs));
        Assert.Equal(new KeyWindow(540, 1020), keys["k1"].Window);
        Assert.Equal(SHA256.HashData("sk-one"u8), keys["k1"].Sha256.ToArray());
        Assert.True(keys["k2"].IsRevoked);
        Assert.Equal(["key.revoke", "key.rotate", "key.issue", "tenant.create"], store.ReadAudit(0, 100).Select(a => a.Action));

        Assert.True(store.DeleteTenant("acme", Audit("tenant.delete", "acme", 8)));
        Assert.Empty(store.Load().Keys);
    }

    // Keys issued in one millisecond list in the order they were issued, not by their random ids
    // (TenancyBinaryTests saw a key issued second listed first on CI).
    [Fact]
    public void KeysIssuedInOneMillisecond_ListInTheOrderTheyWereIssued()
    {
        using var store = Open();
        store.InsertTenant(StoredTenant.Defaults("acme", 0), Audit("tenant.create", "acme", 0));
        foreach (var id in new[] { "ffff0001", "0000ffff", "88880000" })
        {
            Assert.True(store.InsertKey(Key(id, "acme", "sk-" + id) with { CreatedMs = 5_000 }, Audit("key.issue", "acme/" + id, 5_000)));
        }

        Assert.Equal(["ffff0001", "0000ffff", "88880000"], store.Load().Keys.Select(k => k.Id));
    }

    internal static AuditEntry Audit(string action, string target, long at) => new(at, "ops", action, target, "");

    internal static StoredKey Key(string id, string tenant, string secret) =>
        new(id, tenant, [.. SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret))], "label", 0, null, KeyWindow.Always, null, null, null);
}
