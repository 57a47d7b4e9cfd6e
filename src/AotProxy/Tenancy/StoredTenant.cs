using System.Collections.Immutable;
using System.Data.Common;
using AotProxy.Configuration;

namespace AotProxy.Tenancy;

// A tenant created through the admin API: the keys [[tenants]] accepts (api_key_sha256 aside:
// its keys are issued, StoredKey), as the store holds them. Validated as a [[tenants]] entry is
// (TenantRules) each time a snapshot is built from it.
internal sealed record StoredTenant(
    string Name,
    string Class,
    int Weight,
    ImmutableArray<string> Models,
    long Rpm,
    long Tpm,
    int MaxInFlight,
    long BudgetTokens,
    long MonthlyBudgetTokens,
    double BudgetUsd,
    double MonthlyBudgetUsd,
    string Environment,
    long CreatedMs,
    long UpdatedMs)
{
    // cache_salt: null inherits the class's, as a [[tenants]] entry without the key.
    public bool? CacheSalt { get; init; }

    public bool StreamBudgetCutoff { get; init; }

    // response_cache: its deterministic requests are answered from the response cache.
    public bool ResponseCache { get; init; }

    // A [[tenants]] entry's defaults (TenantConfig's), for a create that leaves keys out.
    public static StoredTenant Defaults(string name, long nowMs)
    {
        var defaults = new TenantConfig();
        return new StoredTenant(name, defaults.Class, defaults.Weight, [.. defaults.Models], 0, 0, 0, 0, 0, 0, 0, defaults.Environment, nowMs, nowMs);
    }

    // The models column of both stores: one JSON array of names ("*" = all).
    public static ImmutableArray<string> ParseModels(string json) =>
        [.. System.Text.Json.JsonSerializer.Deserialize(json, TenancyJsonContext.Default.StringArray) ?? []];

    // One row of either store's tenant query, its columns in this order: name, class, weight,
    // models, rpm, tpm, max_in_flight, budget_tokens, monthly_budget_tokens, budget_usd,
    // monthly_budget_usd, environment, created, updated, cache_salt, stream_budget_cutoff,
    // response_cache.
    public static StoredTenant Read(DbDataReader row) => new(
        row.GetString(0), row.GetString(1), row.GetInt32(2), ParseModels(row.GetString(3)), row.GetInt64(4), row.GetInt64(5),
        row.GetInt32(6), row.GetInt64(7), row.GetInt64(8), row.GetDouble(9), row.GetDouble(10),
        row.GetString(11), row.GetInt64(12), row.GetInt64(13))
    {
        CacheSalt = row.IsDBNull(14) ? null : row.GetBoolean(14),
        StreamBudgetCutoff = row.GetBoolean(15),
        ResponseCache = row.GetBoolean(16),
    };

    public string ModelsJson() => System.Text.Json.JsonSerializer.Serialize([.. Models], TenancyJsonContext.Default.StringArray);

    public TenantConfig ToConfig() => new()
    {
        Name = Name,
        Class = Class,
        Weight = Weight,
        Models = Models,
        Rpm = Rpm,
        Tpm = Tpm,
        MaxInFlight = MaxInFlight,
        BudgetTokens = BudgetTokens,
        MonthlyBudgetTokens = MonthlyBudgetTokens,
        BudgetUsd = BudgetUsd,
        MonthlyBudgetUsd = MonthlyBudgetUsd,
        Environment = Environment,
        CacheSalt = CacheSalt,
        StreamBudgetCutoff = StreamBudgetCutoff,
        ResponseCache = ResponseCache,
    };

    // For the audit: what the tenant is set to (no secret in it).
    public string Describe() =>
        $"class={Class} weight={Weight} models={string.Join(',', Models)} rpm={Rpm} tpm={Tpm} max_in_flight={MaxInFlight}"
        + $" budget_tokens={BudgetTokens} monthly_budget_tokens={MonthlyBudgetTokens} budget_usd={BudgetUsd.ToString(System.Globalization.CultureInfo.InvariantCulture)}"
        + $" monthly_budget_usd={MonthlyBudgetUsd.ToString(System.Globalization.CultureInfo.InvariantCulture)} environment={Environment}"
        + $" cache_salt={(CacheSalt is { } salt ? salt ? "true" : "false" : "class")} stream_budget_cutoff={(StreamBudgetCutoff ? "true" : "false")}"
        + $" response_cache={(ResponseCache ? "true" : "false")}";
}
