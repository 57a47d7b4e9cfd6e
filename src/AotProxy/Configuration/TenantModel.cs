using System.Collections.Immutable;

namespace AotProxy.Configuration;

internal sealed record TenantModel(
    string Name,
    string Class,
    int Weight,
    ImmutableArray<ImmutableArray<byte>> ApiKeySha256, // each 32 bytes
    ImmutableArray<string> Models,                     // contains "*": every model
    long Rpm,
    long Tpm,
    int MaxInFlight,
    string Environment = "",                           // free-form ("prod", "staging"): routing metadata for later stages
    TenantBudgetModel? Budget = null)                  // null: no budget at all
{
    // cache_salt (the tenant's own, else its class's): null, no salt.
    public TenantCacheSalt? CacheSalt { get; init; }

    // stream_budget_cutoff (only with a Budget): its streams reserve their prompt only, and each
    // content chunk debits the budget as it is relayed, up to the cap (Limits/StreamBudget).
    public bool StreamBudgetCutoff { get; init; }

    // response_cache: its deterministic requests may be answered from the response cache (Caching/).
    public bool ResponseCache { get; init; }

    // rpm, tpm, max_in_flight or a budget set: the request passes the limit stage (Limits/TenantLimits).
    public bool HasLimits => Rpm > 0 || Tpm > 0 || MaxInFlight > 0 || Budget is not null;

    public bool AllowsModel(string model)
    {
        foreach (var allowed in Models)
        {
            if (allowed == "*" || string.Equals(allowed, model, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
