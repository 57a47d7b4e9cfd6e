using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Http;
using AotProxy.Ledger;

namespace AotProxy.Limits;

// The limit stage: the request's one token reservation (Accounting/TokenReservation), and the
// tenant's hard stops before anything is queued: max_in_flight, the budgets, RPM, TPM. TPM and
// the budgets reserve it (the budgets also its worst-case cost); a budget may cap its completion.
// A refusal is a value (ProxyRequest.Failure); Http/ProxyErrors writes the 429.
// sharedRequests (set when [cluster] redis_url is): RPM is also taken from the tenant's fleet-wide
// minute, one round trip after the local checks passed, so a request this replica refuses costs
// the store nothing. Alone (null) the stage completes synchronously, as before the cluster.
// storeDown: what [cluster] store_down decides while the store does not answer.
internal sealed class LimitStage(TenantLimits limits, LimitTelemetry telemetry, SharedRequestWindow? sharedRequests = null, StoreDownPolicy? storeDown = null)
{
    public ValueTask<bool> TryAcquireAsync(ProxyRequest request)
    {
        if (!TryAcquire(request))
        {
            return ValueTask.FromResult(false);
        }

        return sharedRequests is not null && request.Limit.Lease.Requests is { } rpm
            ? TakeSharedAsync(request, sharedRequests, rpm.Capacity)
            : ValueTask.FromResult(true);
    }

    public bool TryAcquire(ProxyRequest request)
    {
        var snapshot = request.Snapshot;
        var tenant = request.Caller.Tenant;
        var inspected = request.Inspected;
        var completion = CompletionTokens(request, snapshot.Limits);
        var limit = limits.TryAcquire(tenant, inspected.PromptTokens, completion, snapshot.Prices.For(inspected.Model), snapshot.Limits.RejectOverrun);
        request.Limit = limit;
        var budget = limit.Budget;
        request.Reservation = budget.Capped
            ? new TokenReservation(inspected.PromptTokens, budget.Completion, Capped: true)
            : new TokenReservation(inspected.PromptTokens, completion);
        if (limit.State is null)
        {
            return true; // a tenant without limits: no counter, no lookup
        }

        telemetry.CountCheck(tenant.Name);
        if (limit.IsAllowed)
        {
            return true;
        }

        telemetry.CountRefusal(tenant.Name, limit.Refusal);
        var quota = limit.Refusal is LimitRefusal.BudgetTokens or LimitRefusal.BudgetUsd;
        request.Failure = quota ? ProxyFailure.QuotaExceeded : ProxyFailure.RateLimited;
        request.Outcome = quota ? LedgerOutcome.InsufficientQuota : LedgerOutcome.RateLimited;
        return false;
    }

    // A store that does not answer leaves the decision to store_down (Cluster/StoreDownPolicy).
    // A refusal gives back what the local checks took, as any limit refusal does.
    private async ValueTask<bool> TakeSharedAsync(ProxyRequest request, SharedRequestWindow shared, long rpm)
    {
        var limit = request.Limit;
        var take = await shared.TryTakeAsync(limit.State!.Name, rpm).ConfigureAwait(false);
        switch (take.Outcome)
        {
            case SharedTakeOutcome.Taken:
                request.Limit = limit with { Lease = limit.Lease.WithShared(shared, take.Second) };
                return true;
            case SharedTakeOutcome.Refused:
                return Refuse(request, limit, take.RetryAfter);
            default:
                var verdict = storeDown?.Decide(limit.State.Name, limit.Lease.Requests!, rpm) ?? StoreDownVerdict.Admitted;
                return verdict.Outcome == StoreDownOutcome.Admitted
                    || (verdict.Outcome == StoreDownOutcome.Refused ? Refuse(request, limit, verdict.RetryAfter) : Close(request, limit, verdict.RetryAfterSeconds));
        }
    }

    // Refused by the fleet-wide minute, or by this replica's share of it while the store is down:
    // 429, as by the limit itself.
    private bool Refuse(ProxyRequest request, LimitResult limit, TimeSpan retryAfter)
    {
        limit.Lease.Settle(admitted: false, null);
        request.Limit = new LimitResult(LimitRefusal.Requests, default, limit.State, limit.Requested, limit.Budget, retryAfter);
        telemetry.CountRefusal(limit.State!.Name, LimitRefusal.Requests);
        request.Failure = ProxyFailure.RateLimited;
        request.Outcome = LedgerOutcome.RateLimited;
        return false;
    }

    // store_down = "closed": 503, the limit store is unavailable (Http/ProxyErrors).
    private static bool Close(ProxyRequest request, LimitResult limit, int retryAfterSeconds)
    {
        limit.Lease.Settle(admitted: false, null);
        request.Limit = limit with { Lease = default };
        request.RetryAfterSeconds = retryAfterSeconds;
        request.Failure = ProxyFailure.LimitStoreDown;
        request.Outcome = LedgerOutcome.LimitStoreDown;
        return false;
    }

    // DataPlaneHandler's finally, once: a request that never went upstream (refused at admission,
    // the client gone while queued, no worker, no pacing turn, an exception before admission) gives
    // its request and whole reservation back; otherwise the reservation settles to the usage.
    public void Settle(ProxyRequest request)
    {
        var charged = request.Admitted && request.Outcome is not (LedgerOutcome.NoWorker or LedgerOutcome.PacingTimeout);
        var lease = request.Limit.Lease;
        request.Limit = default;
        lease.Settle(charged, request.Usage);
    }

    // max_tokens, else limits.default_max_tokens; an embedding generates nothing.
    private static long CompletionTokens(ProxyRequest request, Configuration.LimitsModel limits) =>
        request.Inspected.MaxTokens > 0 ? request.Inspected.MaxTokens
        : request.Endpoint == EndpointKind.Embeddings ? 0
        : limits.DefaultMaxTokens;
}
