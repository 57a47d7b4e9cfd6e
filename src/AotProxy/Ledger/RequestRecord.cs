using AotProxy.Accounting;

namespace AotProxy.Ledger;

// One ledger row: what happened to one request, built by DataPlaneHandler at its end and carried
// by value through the writer's channel (a struct: recording allocates nothing on the hot path).
// Usage is zero for a request that never reached a worker. CostNanos is nano-USD (UsageTotals).
internal readonly record struct RequestRecord(
    string RequestId,
    DateTimeOffset Time,      // when the request arrived (UTC)
    string Tenant,
    string KeyId,             // ApiKeyIndex.KeyIdOf, "" when not identified by an API key
    string Class,
    string Model,             // as the client asked; "" when the body had none
    string Worker,            // the worker of the last attempt; "" when none was tried
    Usage Usage,
    double QueueWaitMs,
    double? TtftMs,           // null: no response byte came from a worker
    double DurationMs,
    int Status,               // what the client got; 499: the client went away first
    string Outcome,           // a LedgerOutcome name
    long CostNanos);
