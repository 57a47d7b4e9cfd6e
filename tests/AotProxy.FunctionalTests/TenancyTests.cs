using System.Globalization;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// Runtime tenants and keys through the admin API on a real gateway (raw Kestrel, simulated
// workers): each change holds from the very next request on the replica that made it.
public class TenancyTests
{
    [Fact]
    public async Task ATenantCreated_AndAKeyIssued_ServeTheNextRequest_AndARevokedKeyIsRefusedAtOnce()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);

        var created = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"],"rpm":100,"budget_tokens":100000}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var (id, key) = await AdminApi.IssueAsync(gateway.Admin, "team-a", """{"label":"ci"}""");
        Assert.StartsWith("sk-", key, StringComparison.Ordinal);
        Assert.Equal(ApiKeyIndex.HashKey(key)[..8], id); // the ledger's key_id

        using (var served = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key)))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        // The request's usage is recorded once its answer has gone out: the client may ask first
        // (a run read requests 0).
        (HttpStatusCode Status, JsonElement Body, string Text) tenants = default;
        await TestGateway.WaitUntilAsync(
            async () =>
            {
                tenants = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants");
                return tenants.Body.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "team-a").GetProperty("requests").GetInt64() >= 1;
            },
            "team-a's request is counted");
        var teamA = tenants.Body.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "team-a");
        Assert.Equal("store", teamA.GetProperty("source").GetString());
        Assert.Equal(1, teamA.GetProperty("requests").GetInt64());
        Assert.True(teamA.GetProperty("budget_left_tokens").GetInt64() < 100_000);
        Assert.Equal("file", tenants.Body.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "acme").GetProperty("source").GetString());

        var keys = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants/team-a/keys");
        var listed = Assert.Single(keys.Body.EnumerateArray().ToArray());
        Assert.Equal((id, "ci", "active"), (listed.GetProperty("id").GetString(), listed.GetProperty("label").GetString(), listed.GetProperty("state").GetString()));
        Assert.NotEqual(JsonValueKind.Null, listed.GetProperty("last_used").ValueKind);
        Assert.False(listed.TryGetProperty("key", out _));
        Assert.DoesNotContain(key, keys.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(key[3..], keys.Text, StringComparison.Ordinal);

        var revoked = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Delete, $"/api/tenants/team-a/keys/{id}");
        Assert.Equal(HttpStatusCode.OK, revoked.Status);
        using (var refused = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Delete, $"/api/tenants/team-a/keys/{id}")).Status);
        keys = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants/team-a/keys");
        Assert.Equal("revoked", keys.Body[0].GetProperty("state").GetString());

        var audit = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/audit");
        Assert.Equal(["key.revoke", "key.issue", "tenant.create"], audit.Body.EnumerateArray().Select(a => a.GetProperty("action").GetString()));
        Assert.All(audit.Body.EnumerateArray(), a => Assert.Equal("anonymous", a.GetProperty("actor").GetString()));
        Assert.Equal($"team-a/{id}", audit.Body[0].GetProperty("target").GetString());
        Assert.DoesNotContain(key[3..], audit.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARotatedKey_HoldsUntilItsValidUntil_ThenIsRefused_WhileTheNewOneServes()
    {
        var clock = new ShiftedClock();
        await using var gateway = await TestGateway.StartAsync(workers: 1, time: clock);
        var (oldId, oldKey) = await AdminApi.IssueAsync(gateway.Admin, "acme", """{"label":"app"}"""); // a file tenant may get issued keys too
        var until = clock.GetUtcNow().AddHours(1).ToString("O", CultureInfo.InvariantCulture);

        var rotated = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, $"/api/tenants/acme/keys/{oldId}/rotate", $$"""{"valid_until":"{{until}}"}""");
        Assert.True(rotated.Status == HttpStatusCode.Created, rotated.Text);
        var newKey = rotated.Body.GetProperty("key").GetString()!;
        Assert.Equal("app", rotated.Body.GetProperty("label").GetString());
        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, oldKey));
        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, newKey));

        clock.Offset = TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1);
        using (var refused = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), oldKey)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("expired_api_key", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, newKey));
        var keys = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants/acme/keys");
        Assert.Equal(["expired", "active"], keys.Body.EnumerateArray().Select(k => k.GetProperty("state").GetString()));

        var past = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, $"/api/tenants/acme/keys/{rotated.Body.GetProperty("id").GetString()}/rotate", """{"valid_until":"2020-01-01T00:00:00Z"}""");
        Assert.Equal(HttpStatusCode.BadRequest, past.Status);
        var missing = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, $"/api/tenants/acme/keys/{rotated.Body.GetProperty("id").GetString()}/rotate", "{}");
        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
    }

    [Fact]
    public async Task AnExpiredKey_AndAKeyOutsideItsWindow_AreRefusedSayingWhy()
    {
        // At minute 57 of an hour, whenever the test runs: the window's hour then starts 1 h 3 min
        // after now, and a jump of 2 h 10 min from now would pass its end (CI at 16:57 UTC).
        var clock = new ShiftedClock { Offset = TimeSpan.FromMinutes(57 - TimeProvider.System.GetUtcNow().Minute) };
        await using var gateway = await TestGateway.StartAsync(workers: 1, time: clock);
        var now = clock.GetUtcNow();
        var (_, expiring) = await AdminApi.IssueAsync(gateway.Admin, "acme", $$"""{"expires_at":"{{now.AddMinutes(5):O}}"}""");
        var later = now.AddHours(2);
        var start = new DateTimeOffset(later.Year, later.Month, later.Day, later.Hour, 0, 0, TimeSpan.Zero);
        var (_, windowed) = await AdminApi.IssueAsync(gateway.Admin, "acme", $$"""{"window":"{{start:HH}}:00-{{start.AddHours(1):HH}}:00"}""");

        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, expiring));
        using (var outside = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), windowed)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, outside.StatusCode);
            Assert.Contains("api_key_outside_window", await outside.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        clock.Offset += start.AddMinutes(10) - now;
        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, windowed));
        using (var expired = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), expiring)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
            Assert.Contains("expired_api_key", await expired.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.BadRequest, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants/acme/keys", """{"expires_at":"2020-01-01T00:00:00Z"}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants/acme/keys", """{"window":"9-17"}""")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants/nobody/keys", "{}")).Status);
    }

    [Fact]
    public async Task AReadOnlyToken_ReadsButEveryWriteIs403_AndTheAuditNamesEachChangesToken()
    {
        var extra = $"""

            [[admin_tokens]]
            id = "viewer"
            sha256 = "{ApiKeyIndex.HashKey("view-secret")}"
            role = "read"

            [[admin_tokens]]
            id = "ops"
            sha256 = "{ApiKeyIndex.HashKey("ops-secret")}"
            role = "admin"
            """;
        await using var gateway = await TestGateway.StartAsync(workers: 1, adminToken: "root-secret", extraToml: extra);

        Assert.Equal(HttpStatusCode.Unauthorized, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants")).Status);
        Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants", token: "view-secret")).Status);
        foreach (var (method, path, json) in new[]
        {
            (HttpMethod.Post, "/api/tenants", """{"name":"x"}"""),
            (HttpMethod.Patch, "/api/tenants/x", """{"rpm":1}"""),
            (HttpMethod.Delete, "/api/tenants/x", null),
            (HttpMethod.Post, "/api/tenants/acme/keys", "{}"),
            (HttpMethod.Post, "/api/workers/sim-0/drain", null),
            (HttpMethod.Post, "/api/config/reload", null),
        })
        {
            var refused = await AdminApi.SendAsync(gateway.Admin, method, path, json, token: "view-secret");
            Assert.True(refused.Status == HttpStatusCode.Forbidden, $"{method} {path}: {refused.Text}");
            Assert.Equal("permission_denied", AdminApi.ErrorCode(refused.Body));
        }

        Assert.Equal(HttpStatusCode.Created, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"team-b"}""", token: "ops-secret")).Status);
        Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Patch, "/api/tenants/team-b", """{"rpm":5}""", token: "root-secret")).Status);
        Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/workers/sim-0/drain", token: "ops-secret")).Status);

        var audit = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/audit", token: "view-secret");
        Assert.Equal([("ops", "worker.drain"), ("default", "tenant.update"), ("ops", "tenant.create")], audit.Body.EnumerateArray().Select(a => (a.GetProperty("actor").GetString(), a.GetProperty("action").GetString())));
        Assert.Equal("sim-0", audit.Body[0].GetProperty("target").GetString());
        Assert.Contains("rpm=5", audit.Body[1].GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AStoreTenant_MayNotTakeAFileTenantsName_AndAReloadThatAddsOneIsRejectedNamingBoth()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);

        var taken = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"acme"}""");
        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.Contains("config file", taken.Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Patch, "/api/tenants/acme", """{"rpm":1}""")).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Delete, "/api/tenants/acme")).Status);
        var badClass = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"x","class":"platinum"}""");
        Assert.Equal(HttpStatusCode.BadRequest, badClass.Status);
        Assert.Contains("platinum", badClass.Text, StringComparison.Ordinal);
        var typo = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"x","max_inflight":3}""");
        Assert.Equal(HttpStatusCode.BadRequest, typo.Status);
        Assert.Contains("max_inflight", typo.Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"x","rpm":-1}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"x","api_key_sha256":["00"]}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", "not json")).Status);
        Assert.Equal(HttpStatusCode.Created, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"team-b"}""")).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"team-b"}""")).Status);
        var (_, key) = await AdminApi.IssueAsync(gateway.Admin, "team-b");

        var toml = await File.ReadAllTextAsync(gateway.ConfigPath);
        await File.WriteAllTextAsync(gateway.ConfigPath, toml + "\n[[tenants]]\nname = \"team-b\"\n");
        var reload = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/config/reload");

        Assert.Equal((HttpStatusCode)422, reload.Status);
        var error = Assert.Single(reload.Body.GetProperty("errors").EnumerateArray()).GetString();
        Assert.Contains("tenant \"team-b\" is also a store tenant", error, StringComparison.Ordinal);
        Assert.Contains("tenants[2].name", error, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, key)); // the store tenant still serves
        Assert.Equal(1, gateway.Store.Current.Revision);
    }

    [Fact]
    public async Task APatch_ChangesTheTenantsLimitsForTheNextRequest_AndADeleteTakesItsKeys()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        Assert.Equal(HttpStatusCode.Created, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"team-c"}""")).Status);
        var (_, key) = await AdminApi.IssueAsync(gateway.Admin, "team-c");
        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, key));

        var patched = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Patch, "/api/tenants/team-c", """{"models":["some-other-model"]}""");
        Assert.Equal(HttpStatusCode.OK, patched.Status);
        Assert.Equal(HttpStatusCode.Forbidden, await StatusOf(gateway, key));
        Assert.Equal(HttpStatusCode.BadRequest, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Patch, "/api/tenants/team-c", """{"name":"team-d"}""")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Patch, "/api/tenants/nobody", """{"rpm":1}""")).Status);

        Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Delete, "/api/tenants/team-c")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusOf(gateway, key));
        var tenants = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants");
        Assert.DoesNotContain(tenants.Body.EnumerateArray(), t => t.GetProperty("name").GetString() == "team-c");
    }

    [Fact]
    public async Task AKeysLastUse_IsFlushedToTheStore_AndTheKeyItselfIsNowhereInTheFile()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        Assert.Equal(HttpStatusCode.Created, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"team-e","rpm":50}""")).Status);
        var (id, key) = await AdminApi.IssueAsync(gateway.Admin, "team-e");
        var file = Path.Combine(gateway.Directory, "aotproxy-usage.db");
        using var store = AotProxy.Tenancy.SqliteTenantStore.Open(file);
        Assert.Null(Assert.Single(store.Load().Keys).LastUsedSecond);

        Assert.Equal(HttpStatusCode.OK, await StatusOf(gateway, key));
        gateway.Host.Tenants!.Flush();

        var contents = store.Load();
        Assert.Equal(50, Assert.Single(contents.Tenants).Rpm);
        Assert.NotNull(Assert.Single(contents.Keys, k => k.Id == id).LastUsedSecond);
        foreach (var part in new[] { file, file + "-wal" }.Where(File.Exists))
        {
            var bytes = await File.ReadAllBytesAsync(part);
            Assert.Equal(-1, bytes.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(key[3..])));
        }
    }

    private static async Task<HttpStatusCode> StatusOf(TestGateway gateway, string key)
    {
        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key));
        return response.StatusCode;
    }
}
