using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Http;
using AotProxy.Inspection;
using AotProxy.Ledger;
using AotProxy.Tracing;

namespace AotProxy.Limits;

// The limit stage: the request's one token reservation (Accounting/TokenReservation), and the
// tenant's hard stops before anything is queued: max_in_flight, the budgets, RPM, TPM. TPM and
// the budgets reserve it (the budgets also its worst-case cost); a budget may cap its completion.
// A refusal is a value (ProxyRequest.Failure); Http/ProxyErrors writes the 429.
// shared (set when [cluster] redis_url is): every limit of the tenant (RPM, TPM, max_in_flight,
// the budgets) is also taken fleet-wide by one admit script, one round trip after the local
// checks passed (without a budget, mostly from the block its tenant's lease holds, no round trip:
// Cluster/TenantLease), so a request this replica refuses costs the store nothing; while the store does
// not answer, its [cluster] store_down policy decides (shared.StoreDown). Alone (null) the stage
// completes synchronously, as before the cluster.
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
        TraceSpan.Event(request.Trace, TraceNames.LimitEvent);
        var snapshot = request.Snapshot;
        var tenant = request.Caller.Tenant;
        var inspected = request.Inspected;
        var completion = CompletionTokens(request, snapshot.Limits);
        var price = snapshot.Prices.For(inspected.Model);
        price = EndpointTraits.TakesAudio(request.Endpoint) ? price.ForAudioEstimate(AudioDuration.TokensPerSecond) : price;
        var limit = limits.TryAcquire(tenant, inspected.PromptTokens, completion, price, snapshot.Limits.RejectOverrun, StreamBudget.AppliesTo(request));
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

    // A store that does not answer leaves the decision to store_down (Cluster/StoreDownPolicy),
    // for every limit the tenant has. A refusal gives back what the local checks took, as any
    // limit refusal does, and answers the 429 of the dimension that refused, with the wait.
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
                return Refuse(request, limit, take.Refusal, take.Budget, take.Left, take.RetryAfter);
            default:
                var verdict = store.StoreDown?.Decide(state, lease, demand) ?? StoreDownVerdict.Admitted;
                switch (verdict.Outcome)
                {
                    case StoreDownOutcome.Admitted:
                        // Settled into the outage's record, never by the settle script: nothing of
                        // it is held in the store (SharedPlace.Alone).
                        request.Limit = limit with { Lease = lease.WithShared(new SharedPlace(store, demand, SharedPlace.AloneSecond)) };
                        return true;
                    case StoreDownOutcome.Refused:
                        return Refuse(request, limit, verdict.Refusal, verdict.Budget, verdict.Left, verdict.RetryAfter);
                    default:
                        return Close(request, limit, verdict.RetryAfterSeconds);
                }
        }
    }

    // Refused by the fleet-wide limits, or by this replica's share of them while the store is
    // down: the 429 of that limit, as by the local check (a budget's with what it had left).
    private bool Refuse(ProxyRequest request, LimitResult limit, LimitRefusal refusal, BudgetKind budget, long left, TimeSpan retryAfter)
    {
        limit.Lease.Settle(admitted: false, null);
        var quota = refusal is LimitRefusal.BudgetTokens or LimitRefusal.BudgetUsd;
        var check = quota ? new BudgetCheck(budget, left, 0, Capped: false, Overrun: false) : limit.Budget;
        request.Limit = new LimitResult(refusal, default, limit.State, limit.Requested, check, retryAfter);
        telemetry.CountRefusal(limit.State!.Name, refusal);
        request.Failure = quota ? ProxyFailure.QuotaExceeded : ProxyFailure.RateLimited;
        request.Outcome = quota ? LedgerOutcome.InsufficientQuota : LedgerOutcome.RateLimited;
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
    // A stream's budget debits (stream_budget_cutoff) settle with its reservation; a stream cut at
    // the cap counts in llm_gateway_budget_cutoffs_total.
    public void Settle(ProxyRequest request)
    {
        // A cache hit took limits only when charge_hits is on: then it is charged its original usage.
        var charged = (request.Admitted || request.Outcome == LedgerOutcome.CacheHit) && request.Outcome is not (LedgerOutcome.NoWorker or LedgerOutcome.PacingTimeout);
        var lease = request.Limit.Lease.WithStreamed(request.Meter.Budget);
        request.Limit = default;
        lease.Settle(charged, request.Usage);
        if (request.Forward.BudgetCut)
        {
            telemetry.CountCutoff(request.Caller.Tenant.Name);
        }
    }

    // max_tokens, else limits.default_max_tokens; an endpoint that generates nothing (embeddings,
    // rerank, score, pooling, classify, the tokenizer) reserves none, nor does a non-stream audio
    // request (vLLM's JSON answer reports the upload's seconds only: AudioUsage). Also what model
    // "auto" checks a model's context with.
    internal static long CompletionTokens(ProxyRequest request, Configuration.LimitsModel limits) =>
        !EndpointTraits.Generates(request.Endpoint) || (EndpointTraits.TakesAudio(request.Endpoint) && !request.Inspected.Stream) ? 0
        : request.Inspected.MaxTokens > 0 ? request.Inspected.MaxTokens
        : limits.DefaultMaxTokens;
}
