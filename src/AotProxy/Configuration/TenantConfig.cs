using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[tenants]] entry.
internal sealed record TenantConfig
{
    public string Name { get; init; } = "";

    // "default" is the implicit class a file without [[classes]] gets.
    public string Class { get; init; } = "default";

    public int Weight { get; init; } = 1;

    // Hex SHA-256 of each API key: the file never holds a usable secret.
    public IReadOnlyList<string> ApiKeySha256 { get; init; } = [];

    public IReadOnlyList<string> Models { get; init; } = ["*"];

    // 0 = unlimited, for all three.
    public long Rpm { get; init; }

    public long Tpm { get; init; }

    public int MaxInFlight { get; init; }

    // Budgets, 0 = none: tokens (prompt + completion) for all time and per calendar month (UTC),
    // and spend in USD at the [[prices]] of each model, the same two ways.
    public long BudgetTokens { get; init; }

    public long MonthlyBudgetTokens { get; init; }

    public double BudgetUsd { get; init; }

    public double MonthlyBudgetUsd { get; init; }

    // Free-form ("prod", "staging", ...): carried with every request of the tenant as routing metadata.
    public string Environment { get; init; } = "";

    // Prefix-cache isolation (TenantCacheSalt); absent: the class's cache_salt.
    public bool? CacheSalt { get; init; }

    // The exact response cache (Caching/): this tenant's deterministic requests are answered from it.
    public bool ResponseCache { get; init; }

    // A stream of this tenant that runs out of budget while it streams is ended at the cap
    // (Limits/StreamBudget); needs a budget.
    public bool StreamBudgetCutoff { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
