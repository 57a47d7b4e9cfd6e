using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Http;
using AotProxy.Ledger;

namespace AotProxy.Limits;

// The limit stage: the request's one token reservation (Accounting/TokenReservation), and the
// tenant's hard stops before anything is queued: max_in_flight, the budgets, RPM, TPM. TPM and
// the budgets reserve it (the budgets also its worst-case cost); a budget may cap its completion.
// A refusal is a value (ProxyRequest.Failure); Http/ProxyErrors writes the 429.
// shared (set when [cluster] redis_url is): every limit of the tenant (RPM, TPM, max_in_flight,
// the budgets) is also taken fleet-wide by one admit script, one round trip after the local
// checks passed, so a request this replica refuses costs the store nothing. Alone (null) the
// stage completes synchronously, as before the cluster.
internal sealed class LimitStage(TenantLimits limits, LimitTelemetry telemetry, SharedTenantLimits? shared = null)
{
    public ValueTask<bool> TryAcquireAsync(ProxyRequest request)
    {
        if (!TryAcquire(request))
        {
            return ValueTask.FromResult(false);
        }

        return shared is not null && request.Limit.State is not null
            ? AdmitSharedAsync(request, shared)
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

    // A store that does not answer leaves the decision to this replica's own limits (they passed).
    // A refusal gives back what the local checks took, as any limit refusal does, and answers the
    // 429 of the dimension that refused, with the fleet's wait.
    private async ValueTask<bool> AdmitSharedAsync(ProxyRequest request, SharedTenantLimits store)
    {
        var limit = request.Limit;
        var state = limit.State!;
        var lease = limit.Lease;
        var budget = lease.Budget;
        var demand = new SharedDemand(
            state.Name,
            lease.Requests?.Capacity ?? 0,
            lease.Tokens?.Capacity ?? 0,
            lease.Reserved,
            state.MaxInFlight,
            budget.State?.Budget,
            budget.Tokens,
            budget.Nanos,
            budget.State is { } spend ? SharedDemand.MonthOf(spend.Month.Start) : 0);
        var take = await store.TryAdmitAsync(demand).ConfigureAwait(false);
        switch (take.Outcome)
        {
            case SharedTakeOutcome.Taken:
                request.Limit = limit with { Lease = lease.WithShared(new SharedPlace(store, demand, take.Second)) };
                return true;
            case SharedTakeOutcome.Refused:
                lease.Settle(admitted: false, null);
                var quota = take.Refusal is LimitRefusal.BudgetTokens or LimitRefusal.BudgetUsd;
                var check = quota ? new BudgetCheck(take.Budget, take.Left, 0, Capped: false, Overrun: false) : limit.Budget;
                request.Limit = new LimitResult(take.Refusal, default, state, limit.Requested, check, take.RetryAfter);
                telemetry.CountRefusal(state.Name, take.Refusal);
                request.Failure = quota ? ProxyFailure.QuotaExceeded : ProxyFailure.RateLimited;
                request.Outcome = quota ? LedgerOutcome.InsufficientQuota : LedgerOutcome.RateLimited;
                return false;
            default:
                return true;
        }
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
