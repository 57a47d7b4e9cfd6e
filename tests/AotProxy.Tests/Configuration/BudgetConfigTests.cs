using AotProxy.Accounting;
using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

// Budgets and [[prices]] from TOML to the Model: USD to whole nano-USD, the defaults, and the
// tenants that get no budget at all.
public sealed class BudgetConfigTests
{
    [Fact]
    public void Parse_BudgetsAndPrices_BecomeNanoUsdAndTokens()
    {
        var snapshot = TestConfig.Valid("""
            [limits]
            budget_overrun = "reject"

            [[tenants]]
            name = "a"
            budget_tokens = 1000000
            monthly_budget_tokens = 5000
            budget_usd = 12.5
            monthly_budget_usd = 0.000000001

            [[tenants]]
            name = "b"

            [[prices]]
            model = "big"
            input_per_million = 2.5
            output_per_million = 10
            cached_input_per_million = 1.25

            [[prices]]
            model = "small"
            input_per_million = 0.15
            output_per_million = 0.6

            [[prices]]
            model = "*"
            input_per_million = 0.001
            output_per_million = 0.002
            """);

        Assert.True(snapshot.Limits.RejectOverrun);
        Assert.Equal(new TenantBudgetModel(1_000_000, 5000, 12_500_000_000, 1), snapshot.Tenants[0].Budget);
        Assert.True(snapshot.Tenants[0].HasLimits);
        Assert.Null(snapshot.Tenants[1].Budget);
        Assert.False(snapshot.Tenants[1].HasLimits);
        Assert.Equal(new ModelPrice(2500, 1250, 10_000), snapshot.Prices.For("big"));
        Assert.Equal(new ModelPrice(150, 150, 600), snapshot.Prices.For("small")); // cached: the input price
        Assert.Equal(new ModelPrice(1, 1, 2), snapshot.Prices.For("other"));      // "*"
    }

    [Fact]
    public void Parse_NoPricesAndNoOverrun_ModelsAreFreeAndOverrunCaps()
    {
        var snapshot = TestConfig.Valid("[[tenants]]\nname = \"a\"\nmonthly_budget_usd = 1.0\n");

        Assert.False(snapshot.Limits.RejectOverrun);
        Assert.True(snapshot.Prices.For("any").IsFree);
        Assert.Equal(1_000_000_000, snapshot.Tenants[0].Budget!.MonthlyNanos);
        Assert.True(snapshot.Tenants[0].Budget!.LimitsCost);
    }

    [Fact]
    public void Parse_AllBudgetsZero_IsNoBudget()
    {
        var snapshot = TestConfig.Valid("[[tenants]]\nname = \"a\"\nbudget_tokens = 0\nbudget_usd = 0.0\n");

        Assert.Null(snapshot.Tenants[0].Budget);
    }

    // cache_salt: a tenant's own key wins, else its class's; the salt is the contract's (hex of
    // SHA-256 over "aotproxy-cache-salt:" + the name), the same in every replica.
    [Fact]
    public void Parse_CacheSalt_TenantOverClassAndTheContractsValue()
    {
        var snapshot = TestConfig.Valid("""
            [[classes]]
            name = "shared"
            priority = 1
            cache_salt = true

            [[classes]]
            name = "plain"
            priority = 2

            [[tenants]]
            name = "inherits"
            class = "shared"

            [[tenants]]
            name = "optsout"
            class = "shared"
            cache_salt = false

            [[tenants]]
            name = "own"
            class = "plain"
            cache_salt = true

            [[tenants]]
            name = "none"
            class = "plain"
            """);

        var salts = snapshot.Tenants.ToDictionary(t => t.Name, t => t.CacheSalt?.Hex);
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("aotproxy-cache-salt:inherits"u8));
        Assert.Equal(expected, salts["inherits"]);
        Assert.Null(salts["optsout"]);
        Assert.Equal(64, salts["own"]!.Length);
        Assert.NotEqual(salts["inherits"], salts["own"]);
        Assert.Null(salts["none"]);
    }

    [Fact]
    public void Parse_StreamBudgetCutoff_OnATenantWithABudget()
    {
        var snapshot = TestConfig.Valid("[[tenants]]\nname = \"a\"\nbudget_usd = 1.0\nstream_budget_cutoff = true\n\n[[tenants]]\nname = \"b\"\nbudget_tokens = 10\n");

        Assert.True(snapshot.Tenants[0].StreamBudgetCutoff);
        Assert.False(snapshot.Tenants[1].StreamBudgetCutoff);
    }

    [Fact]
    public void Parse_StreamBudgetCutoff_WithoutABudget_IsAnErrorNamingTheKey()
    {
        var error = TestConfig.SingleError("[[tenants]]\nname = \"a\"\nstream_budget_cutoff = true\n");

        Assert.Equal("tenants[0].stream_budget_cutoff", error.Key);
        Assert.Contains("has none", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, error.Line);
    }
}
