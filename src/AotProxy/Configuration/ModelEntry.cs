using System.Collections.Immutable;

namespace AotProxy.Configuration;

// One validated [[models]] entry. An alias has Targets; a served model's own entry has none.
internal sealed record ModelEntry(
    string Name,
    ImmutableArray<string> Targets,
    int MaxTokens,                       // 0: no cap
    ImmutableArray<string> Tenants,      // empty: every tenant
    ModelCapabilities Capabilities = ModelCapabilities.None, // None: undeclared
    int ContextLength = 0)               // 0: the workers' max_model_len
{
    // response_cache: deterministic requests for this name are answered from the response cache.
    public bool ResponseCache { get; init; }

    public bool IsAlias => !Targets.IsEmpty;

    public bool AllowsTenant(string tenant) => Tenants.IsEmpty || Tenants.Contains(tenant, StringComparer.Ordinal);
}
