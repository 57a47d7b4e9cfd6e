using System.Collections.Frozen;
using System.Collections.Immutable;

namespace AotProxy.Configuration;

// [[models]] by name: the aliases clients may send and the served models' own settings.
internal sealed class ModelCatalog(FrozenDictionary<string, ModelEntry> byName)
{
    // The name clients send to let the gateway choose (Routing/AutoModel); no entry may take it.
    public const string Auto = "auto";

    public static ModelCatalog Empty { get; } = new(FrozenDictionary<string, ModelEntry>.Empty);

    // The aliases in name order, as /v1/models lists them.
    public ImmutableArray<ModelEntry> Aliases { get; } = [.. byName.Values.Where(e => e.IsAlias).OrderBy(e => e.Name, StringComparer.Ordinal)];

    public int Count => byName.Count;

    public ModelEntry? Find(string name) => byName.GetValueOrDefault(name);

    // Whether the tenant may name the model: its own allowlist, and the entry's tenants if it has any.
    public bool Allows(TenantModel tenant, string model) =>
        tenant.AllowsModel(model) && Find(model)?.AllowsTenant(tenant.Name) != false;
}
