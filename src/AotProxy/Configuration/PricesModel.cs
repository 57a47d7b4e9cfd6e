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

    // A request's cost in nano-USD: what the ledger stores per request (snapshot.Prices, the
    // request's snapshot) and what the budgets are charged (LimitLease, at the same price).
    public long CostNanos(string model, in Usage usage) => For(model).CostNanos(usage);
}
