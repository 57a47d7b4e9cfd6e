using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// Runtime tenants and keys in the real executable (the AOT binary in CI): the source-generated
// request and response JSON, the SQLite tables beside the ledger, a restart that keeps them, and
// a process whose log never holds a key.
public class TenancyBinaryTests
{
    [Fact]
    public async Task Serve_IssuesUsesAndRevokesAKey_KeepsThemAcrossARestart_AndNeverLogsTheKey()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-tenancy-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker]));

        string kept;
        string output;
        await using (var gateway = GatewayProcess.Start("serve", "--config", config))
        {
            await gateway.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = gateway.DataUri };
            using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

            var created = await AdminApi.SendAsync(admin, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"],"tpm":100000}""");
            Assert.True(created.Status == HttpStatusCode.Created, created.Text);
            var (revokedId, revoked) = await AdminApi.IssueAsync(admin, "team-a", """{"label":"leaked"}""");
            (_, kept) = await AdminApi.IssueAsync(admin, "team-a", """{"label":"app","window":"00:00-24:00"}""");
            Assert.Equal(HttpStatusCode.OK, await StatusOf(http, revoked));
            Assert.Equal(HttpStatusCode.Conflict, (await AdminApi.SendAsync(admin, HttpMethod.Post, "/api/tenants", """{"name":"team-a"}""")).Status);

            Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(admin, HttpMethod.Delete, $"/api/tenants/team-a/keys/{revokedId}")).Status);
            Assert.Equal(HttpStatusCode.Unauthorized, await StatusOf(http, revoked));
            Assert.Equal(HttpStatusCode.OK, await StatusOf(http, kept));
            var keys = await AdminApi.SendAsync(admin, HttpMethod.Get, "/api/tenants/team-a/keys");
            Assert.Equal(["revoked", "active"], keys.Body.EnumerateArray().Select(k => k.GetProperty("state").GetString()));
            Assert.DoesNotContain(kept[3..], keys.Text, StringComparison.Ordinal);
            Assert.DoesNotContain(kept[3..], await admin.GetStringAsync("/metrics"), StringComparison.Ordinal);

            gateway.SendSigterm();
            Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
            output = gateway.Output;
            Assert.DoesNotContain(revoked[3..], output, StringComparison.Ordinal);
            Assert.DoesNotContain(kept[3..], output, StringComparison.Ordinal);
        }

        await using (var restarted = GatewayProcess.Start("serve", "--config", config))
        {
            await restarted.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = restarted.DataUri };
            using var admin = new HttpClient { BaseAddress = restarted.AdminUri };
            Assert.Equal(HttpStatusCode.OK, await StatusOf(http, kept));
            var audit = await AdminApi.SendAsync(admin, HttpMethod.Get, "/api/audit");
            Assert.Equal(["key.revoke", "key.issue", "key.issue", "tenant.create"], audit.Body.EnumerateArray().Select(a => a.GetProperty("action").GetString()));
            var listed = await AdminApi.SendAsync(admin, HttpMethod.Get, "/api/tenants/team-a/keys");
            Assert.NotEqual(System.Text.Json.JsonValueKind.Null, listed.Body[1].GetProperty("last_used").ValueKind); // flushed at the first stop
        }

        directory.Delete(recursive: true);
    }

    // The identify stage keeps a key's SHA-256 per Authorization string instance, which Kestrel
    // gives each request of a keep-alive connection that repeats the header (Identity/KeyDigestCache):
    // a key revoked through the admin API is refused on the very next request of that connection.
    [Fact]
    public async Task Serve_AKeyRevokedBetweenTwoRequestsOfOneConnection_IsRefusedOnTheNextOne()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        using var directory = new TempDirectory();
        // Never parked: a parked connection's next request gets fresh header strings.
        await using var gateway = await GatewayProcess.ServeAsync(directory.Path, TestGateway.Toml([worker], serverToml: "park_idle_after = \"0\""));
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };
        Assert.Equal(HttpStatusCode.Created, (await AdminApi.SendAsync(admin, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"]}""")).Status);
        var (revokedId, revoked) = await AdminApi.IssueAsync(admin, "team-a", """{"label":"leaked"}""");
        var (_, kept) = await AdminApi.IssueAsync(admin, "team-a", """{"label":"app"}""");
        using var client = await KeepAliveClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, gateway.DataUri!.Port));

        Assert.Equal(200, await StatusOnAsync(client, revoked));
        Assert.Equal(200, await StatusOnAsync(client, revoked));
        Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(admin, HttpMethod.Delete, $"/api/tenants/team-a/keys/{revokedId}")).Status);
        Assert.Equal(401, await StatusOnAsync(client, revoked));
        Assert.Equal(200, await StatusOnAsync(client, kept));
        Assert.Equal(401, await StatusOnAsync(client, revoked));
    }

    [Fact]
    public async Task Serve_AFileTenantOfAStoreTenantsName_IsExit1NamingBoth()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-tenancy-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker]));
        await using (var gateway = GatewayProcess.Start("serve", "--config", config))
        {
            await gateway.WaitForReadyAsync();
            using var admin = new HttpClient { BaseAddress = gateway.AdminUri };
            Assert.Equal(HttpStatusCode.Created, (await AdminApi.SendAsync(admin, HttpMethod.Post, "/api/tenants", """{"name":"team-z"}""")).Status);
            gateway.SendSigterm();
            Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        }

        await File.WriteAllTextAsync(config, TestGateway.Toml([worker]) + "\n[[tenants]]\nname = \"team-z\"\n");
        var (code, output) = await GatewayProcess.RunToEndAsync("serve", "--config", config);

        Assert.Equal(1, code);
        Assert.Contains("tenant \"team-z\" is also a store tenant", output, StringComparison.Ordinal);
        Assert.Contains("tenants[2].name", output, StringComparison.Ordinal);
        directory.Delete(recursive: true);
    }

    private static async Task<int> StatusOnAsync(KeepAliveClient client, string key)
    {
        await client.SendAsync(KeepAliveClient.Post("/v1/chat/completions", TestGateway.Chat(false), $"Authorization: Bearer {key}\r\n"));
        return (await client.ReadResponseAsync()).Status;
    }

    private static async Task<HttpStatusCode> StatusOf(HttpClient http, string key)
    {
        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key));
        return response.StatusCode;
    }
}
