using System.Net;
using AotProxy.Cli;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// `aotproxy tenants | keys | audit` against a real gateway's admin API: the operator's walkthrough
// (README) as a test.
public class TenancyCliTests
{
    [Fact]
    public async Task TheWalkthrough_CreateATenant_IssueAKey_SetABudget_ReadUsage()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, adminToken: "root-secret");
        string[] admin = ["--admin", gateway.Host.AdminUri.ToString(), "--token", "root-secret"];

        var (code, output, errors) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "create", "team-a", "--models", "*", "--rpm", "600", .. admin]);
        Assert.True(code == 0, errors);
        Assert.Contains("team-a", output, StringComparison.Ordinal);

        (code, output, errors) = await RunAsync(KeysCommand.RunAsync, ["keys", "issue", "team-a", "--label", "ci", .. admin]);
        Assert.True(code == 0, errors);
        var key = Line(output, "key:");
        var id = Line(output, "id:");
        using (var served = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key)))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        (code, _, errors) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "update", "team-a", "--cache-salt", "yes", .. admin]);
        Assert.Equal(2, code);
        Assert.Contains("--cache-salt: \"yes\" is not true or false", errors, StringComparison.Ordinal);
        (code, _, errors) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "update", "team-a", "--monthly-budget-tokens", "50000", "--budget-usd", "2.5", "--stream-budget-cutoff", "true", "--cache-salt", "true", .. admin]);
        Assert.True(code == 0, errors);
        (code, output, _) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "--json", .. admin]);
        using (var listed = System.Text.Json.JsonDocument.Parse(output))
        {
            var teamA = listed.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "team-a");
            Assert.True(teamA.GetProperty("stream_budget_cutoff").GetBoolean() && teamA.GetProperty("cache_salt").GetBoolean(), output);
        }

        (code, output, _) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "list", .. admin]);
        Assert.Equal(0, code);
        var row = output.Split('\n').Single(l => l.StartsWith("team-a ", StringComparison.Ordinal));
        Assert.Matches(@"^team-a\s+store\s+default\s+1\s+\*\s+600\s+0\s+0\s+0\s+1\s+[1-9]", row);
        Assert.StartsWith("name ", output, StringComparison.Ordinal);

        (code, output, _) = await RunAsync(KeysCommand.RunAsync, ["keys", "list", "team-a", .. admin]);
        Assert.Equal(0, code);
        Assert.Matches($@"(?m)^{id}\s+ci\s+active\s", output);
        Assert.DoesNotContain(key, output, StringComparison.Ordinal);

        (code, output, _) = await RunAsync(KeysCommand.RunAsync, ["keys", "revoke", "team-a", id, .. admin]);
        Assert.Equal(0, code);
        using (var refused = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        (code, output, _) = await RunAsync(AuditCommand.RunAsync, ["audit", .. admin]);
        Assert.Equal(0, code);
        Assert.Equal(["key.revoke", "tenant.update", "key.issue", "tenant.create"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split("  ", StringSplitOptions.RemoveEmptyEntries)[2].Trim()));
        Assert.All(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1), l => Assert.Contains(" default ", l, StringComparison.Ordinal));

        (code, output, _) = await RunAsync(AuditCommand.RunAsync, ["audit", "--json", "--limit", "1", .. admin]);
        Assert.Equal(0, code);
        Assert.StartsWith("[", output, StringComparison.Ordinal);
        Assert.Contains("\"key.revoke\"", output, StringComparison.Ordinal);
        Assert.DoesNotContain("tenant.create", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failures_AreOneLineWithTheApisReason_AndBadFlagsExit2()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        string[] admin = ["--admin", gateway.Host.AdminUri.ToString()];

        var (code, _, errors) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "create", "acme", .. admin]);
        Assert.Equal(1, code);
        Assert.Contains("is defined in the config file", errors, StringComparison.Ordinal);
        (code, _, errors) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "create", "x", "--rpm", "lots", .. admin]);
        Assert.Equal(2, code);
        Assert.Contains("--rpm must be an integer", errors, StringComparison.Ordinal);
        (code, _, errors) = await RunAsync(TenantsCommand.RunAsync, ["tenants", "create", "x", "--rmp", "3", .. admin]);
        Assert.Equal(2, code);
        Assert.Contains("--rmp", errors, StringComparison.Ordinal);
        (code, _, _) = await RunAsync(KeysCommand.RunAsync, ["keys", "rotate", "acme", "abcd1234", .. admin]);
        Assert.Equal(2, code);
        (code, _, errors) = await RunAsync(KeysCommand.RunAsync, ["keys", "revoke", "acme", "abcd1234", .. admin]);
        Assert.Equal(1, code);
        Assert.Contains("no key 'abcd1234'", errors, StringComparison.Ordinal);
        (code, _, errors) = await RunAsync(AuditCommand.RunAsync, ["audit", "--admin", "http://127.0.0.1:1"]);
        Assert.Equal(1, code);
        Assert.Contains("cannot reach the admin API", errors, StringComparison.Ordinal);
    }

    private static string Line(string output, string prefix) =>
        output.Split('\n').Single(l => l.StartsWith(prefix, StringComparison.Ordinal))[prefix.Length..].Trim();

    private static async Task<(int Code, string Output, string Errors)> RunAsync(Func<CliArgs, TextWriter, TextWriter, Task<int>> command, string[] args)
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var code = await command(CliArgs.Parse(args), output, errors);
        return (code, output.ToString(), errors.ToString());
    }
}
