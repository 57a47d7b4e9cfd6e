namespace AotProxy.Ledger;

// One group of a usage report (`aotproxy usage`, GET /api/usage). Errors: status 400 and above,
// 499 (client gone) included. Cached tokens are part of the prompt tokens. Cache hits: requests the
// response cache answered (their tokens are what they were charged: none unless charge_hits).
internal sealed record UsageRow(
    string Key,
    long Requests,
    long PromptTokens,
    long CompletionTokens,
    long CachedTokens,
    long EstimatedRequests,
    long CostNanos,
    long Errors,
    long CacheHits = 0)   // answered from the response cache
{
    public decimal CostUsd => CostNanos / 1_000_000_000m;

    // One row of either ledger's report query, its columns in this order (UsageQuery.Run,
    // PostgresLedger.RunAsync).
    public static UsageRow Read(System.Data.Common.DbDataReader row) => new(
        row.GetString(0), row.GetInt64(1), row.GetInt64(2), row.GetInt64(3), row.GetInt64(4), row.GetInt64(5), row.GetInt64(6), row.GetInt64(7), row.GetInt64(8));
}
