using System.Globalization;

namespace AotProxy.Limits;

// Budget amounts as people read them: spend is counted in nano-USD (TenantBudgetState), shown in USD.
internal static class BudgetAmount
{
    // nano-USD as USD with up to 9 decimals; tokens as they are.
    public static string Format(BudgetKind kind, long value) => kind is BudgetKind.Usd or BudgetKind.MonthlyUsd
        ? "$" + Usd(value).ToString("0.#########", CultureInfo.InvariantCulture)
        : value.ToString(CultureInfo.InvariantCulture) + " tokens";

    public static decimal Usd(long nanos) => nanos / 1_000_000_000m;
}
