namespace AotProxy.Admin.Contracts;

// GET /api/tenants: one configured tenant, its limits as configured (0 = unlimited), and what it
// is doing now (waiting and in flight, summed over the model pools) and has used since start
// (Requests: those that reached a worker and were accounted).
// The limit stage's view: requests and tokens left in its RPM and TPM buckets now (null without
// that limit) and its requests past the limit check (queued or running; what max_in_flight counts).
internal sealed record TenantReport(
    string Name,
    string Class,
    int Weight,
    string[] Models,
    long Rpm,
    long Tpm,
    int MaxInFlight,
    int Waiting,
    int InFlight,
    long Requests,
    long PromptTokens,
    long CompletionTokens,
    long CachedPromptTokens,   // part of PromptTokens
    long ReasoningTokens,      // part of CompletionTokens
    long EstimatedRequests,    // of Requests: accounted with the gateway's estimate (no usage reported)
    long MonthTokens,          // prompt + completion in this calendar month (UTC), the ledger's from before the start included
    long? RemainingRequests,
    long? RemainingTokens,
    int LimitedInFlight);
