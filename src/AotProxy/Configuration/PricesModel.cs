using System.Collections.Frozen;
using AotProxy.Accounting;

namespace AotProxy.Configuration;

// [[prices]] as whole nano-USD per token, by model. A model without an entry costs what the
// "*" entry says, else nothing: a spend budget then never stops it.
internal sealed class PricesModel(FrozenDictionary<string, ModelPrice> byModel, ModelPrice fallback)
{
    public const string AnyModel = "*";

    public static PricesModel None { get; } = new(FrozenDictionary<string, ModelPrice>.Empty, default);

    public int Count => byModel.Count + (fallback.IsFree ? 0 : 1);

    public ModelPrice For(string model) => byModel.TryGetValue(model, out var price) ? price : fallback;
}
