using System.Text.Json;
using AotProxy.Cli;
using AotProxy.Tests.Ledger;

namespace AotProxy.Tests.Cli;

public sealed class UsageCommandTests : IDisposable
{
    private readonly LedgerFile _file = new();

    public UsageCommandTests() => _file.Insert(
        LedgerFile.Row(tenant: "acme", model: "llama", prompt: 100, completion: 20, cost: 2_500_000_000),
        LedgerFile.Row(tenant: "acme", model: "llama", prompt: 50, completion: 0, status: 503),
        LedgerFile.Row(tenant: "beta", model: "qwen", prompt: 7, completion: 3, estimated: true));

    [Fact]
    public void Usage_ByTenant_PrintsATableWithATotal()
    {
        var (exit, output, errors) = Run("usage", "--ledger", _file.Path);

        Assert.True(exit == 0, errors);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["tenant", "requests", "prompt", "completion", "cached", "estimated", "cost_usd", "errors", "cache_hits"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["acme", "2", "150", "20", "0", "0", "2.500000", "1", "0"], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["beta", "1", "7", "3", "0", "1", "0.000000", "0", "0"], lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["total", "3", "157", "23", "0", "1", "2.500000", "1", "0"], lines[3].Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Usage_JsonByModel_IsTheApiShape()
    {
        var (exit, output, errors) = Run("usage", "--ledger", _file.Path, "--by", "model", "--json");

        Assert.True(exit == 0, errors);
        using var json = JsonDocument.Parse(output);
        Assert.Equal("model", json.RootElement.GetProperty("by").GetString());
        var rows = json.RootElement.GetProperty("rows");
        Assert.Equal(["llama", "qwen"], rows.EnumerateArray().Select(r => r.GetProperty("key").GetString()));
        Assert.Equal(2.5m, rows[0].GetProperty("cost_usd").GetDecimal());
    }

    [Fact]
    public void Usage_SinceAfterEveryRow_SaysThereIsNothing()
    {
        var (exit, output, _) = Run("usage", "--ledger", _file.Path, "--since", "2030-01-01");

        Assert.Equal(0, exit);
        Assert.Contains("no requests", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Usage_MissingLedger_FailsNamingTheFileAndCreatesNothing()
    {
        var missing = _file.Path + ".missing";

        var (exit, _, errors) = Run("usage", "--ledger", missing);

        Assert.Equal(1, exit);
        Assert.Contains(missing, errors, StringComparison.Ordinal);
        Assert.False(File.Exists(missing));
    }

    [Theory]
    [InlineData("--by", "worker")]
    [InlineData("--since", "last week")]
    [InlineData("--frobnicate", "1")]
    public void Usage_BadOption_Exits2(string option, string value)
    {
        var (exit, _, errors) = Run("usage", "--ledger", _file.Path, option, value);

        Assert.Equal(2, exit);
        Assert.NotEmpty(errors);
    }

    private static (int Exit, string Output, string Errors) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var exit = UsageCommand.Run(CliArgs.Parse(args), output, errors);
        return (exit, output.ToString(), errors.ToString());
    }

    public void Dispose() => _file.Dispose();
}
