using AotProxy.Accounting;

namespace AotProxy.Ledger;

// One ledger row: what happened to one request, built by RecordStage at its end and carried
// by value through the writer's channel (a struct: recording allocates nothing on the hot path).
// Usage is zero for a request that never reached a worker. CostNanos is nano-USD (UsageTotals).
internal readonly record struct RequestRecord(
    string RequestId,
    DateTimeOffset Time,      // when the request arrived (UTC)
    string Tenant,
    string KeyId,             // ApiKeyIndex.KeyIdOf, "" when not identified by an API key
    string Class,
    string Model,             // the served model (an alias's target, model "auto"'s choice); "" when the body had none
    string RequestedModel,    // as the client asked: the alias, "auto", or the served model's own name
    string Worker,            // the worker of the last attempt; "" when none was tried
    Usage Usage,
    double QueueWaitMs,
    double? TtftMs,           // null: no response byte came from a worker
    double DurationMs,
    int Status,               // what the client got; 499: the client went away first
    string Outcome,           // a LedgerOutcome name
    long CostNanos,
    bool CacheHit = false)    // answered from the response cache (Caching/): its usage is what it was charged
{
    // The journal's row for an admitted request (LedgerWriter.TryJournal): what is known at
    // admission. The prompt estimate is charged (the worker's prefill consumes it first); the
    // content relayed before a crash is not known, since following it would cost a write per
    // stream per interval, so the completion is 0 (Usage.Estimate with no chunks). No worker yet,
    // no first byte, no duration; status 500: the gateway failed the request.
    public static RequestRecord Interrupted(string requestId, DateTimeOffset time, string tenant, string keyId, string @class, string model, string requestedModel, long promptEstimate, TimeSpan queueWait, in ModelPrice price)
    {
        var usage = Usage.Estimate(promptEstimate, contentChunks: 0);
        return new(requestId, time, tenant, keyId, @class, model, requestedModel, string.Empty, usage, queueWait.TotalMilliseconds, null, 0, 500, LedgerOutcome.Interrupted, price.CostNanos(usage));
    }
}
