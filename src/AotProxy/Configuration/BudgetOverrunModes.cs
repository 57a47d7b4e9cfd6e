namespace AotProxy.Configuration;

// The values [limits].budget_overrun accepts: what happens to a request whose max_tokens would
// take more than the tenant's budget has left.
internal static class BudgetOverrunModes
{
    // The request goes upstream with max_tokens lowered to what is left.
    public const string Cap = "cap";

    // 429 insufficient_quota.
    public const string Reject = "reject";
}
