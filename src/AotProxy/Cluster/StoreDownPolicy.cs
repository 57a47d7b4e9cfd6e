using System.Collections.Concurrent;
using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;
using Microsoft.Extensions.Logging;

namespace AotProxy.Cluster;

// [cluster] store_down: what a replica does with a limited tenant's request when the store does
// not answer the admit script (LimitStage's one StoreDown branch; the replica's own full limits
// have passed already). Every limit the tenant has is shared, so every one is decided here:
// - "local": each replica enforces its 1/N share of each limit, N the live members at its last
//   good heartbeat (at least 1): the share is floor(limit / N), so the shares never add up to more
//   than the limit, but at least 1 (with limit < N the replicas together may admit N).
//   RPM and TPM: checked against this replica's own sliding windows (all it admitted in the last
//   61 s, shared or not), so a 60 s window wholly inside the outage holds at most the limit over
//   the fleet. max_in_flight: against this replica's own in-flight count. Budgets: the budget
//   reservations admitted alone in this outage against floor(budget / N), never given back before
//   the outage ends, so an outage adds at most one budget fleet-wide to the spend the store held
//   when it began (plus the prompt-estimate error of those requests), whatever N.
//   Each admission is recorded (AloneTenant): StoreResync charges the requests, tokens and spend
//   into the store once it answers again, and never twice.
// - "closed": 503 with Retry-After (the heartbeat, when the store may be back), for every tenant
//   with a limit; tenants without limits never reach the admit script.
// The first decision of an outage is logged; StoreResync logs the end.
internal sealed class StoreDownPolicy(ClusterModel model, Func<ClusterView> view, ClusterTelemetry telemetry, TimeProvider time, ILogger logger)
{
    // max_in_flight's refusal names no time: a place frees when a request ends.
    private static readonly TimeSpan InFlightWait = TimeSpan.FromSeconds(1);

    private readonly bool _closed = model.StoreDown == StoreDownModes.Closed;
    private ConcurrentDictionary<string, AloneTenant> _admitted = new(StringComparer.Ordinal);
    private int _down;
    private int _unsent;

    public string Mode => model.StoreDown;

    // N: the live members at the last heartbeat that reached the store, at least 1 (this replica).
    public int Members => Math.Max(1, view().Members.Length);

    // state and lease: the tenant's own limits on this replica, which have taken this request
    // already; demand: what the admit script was asked.
    public StoreDownVerdict Decide(TenantLimitState state, in LimitLease lease, in SharedDemand demand)
    {
        var members = Members;
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            ClusterLog.DecidingAlone(logger, model.StoreDown, members);
        }

        var verdict = _closed
            ? new StoreDownVerdict(StoreDownOutcome.Closed, model.Heartbeat)
            : DecideLocal(state, lease, demand, members);
        telemetry.CountDecision(verdict.Outcome);
        return verdict;
    }

    // In flight, RPM, TPM, then the budgets (whose check reserves, so it comes last); recorded
    // only once all passed.
    private StoreDownVerdict DecideLocal(TenantLimitState state, in LimitLease lease, in SharedDemand demand, int members)
    {
        if (demand.MaxInFlight > 0 && state.InFlight > LocalShare.Of(demand.MaxInFlight, members))
        {
            return new StoreDownVerdict(StoreDownOutcome.Refused, InFlightWait, LimitRefusal.InFlight);
        }

        var requests = lease.Requests;
        if (requests is not null && requests.WindowUsed > LocalShare.Of(demand.Rpm, members))
        {
            return new StoreDownVerdict(StoreDownOutcome.Refused, requests.WindowTimeUntil(0, LocalShare.Of(demand.Rpm, members)), LimitRefusal.Requests);
        }

        var tokens = lease.Tokens;
        if (tokens is not null && tokens.WindowUsed > LocalShare.Of(demand.Tpm, members))
        {
            return new StoreDownVerdict(StoreDownOutcome.Refused, tokens.WindowTimeUntil(0, LocalShare.Of(demand.Tpm, members)), LimitRefusal.Tokens);
        }

        var record = Record(demand.Tenant);
        if (demand.Budget is { } budget)
        {
            var (kind, left) = record.TryReserve(budget, demand.BudgetTokens, demand.BudgetNanos, members);
            if (kind != BudgetKind.None)
            {
                var refusal = kind is BudgetKind.Tokens or BudgetKind.MonthlyTokens ? LimitRefusal.BudgetTokens : LimitRefusal.BudgetUsd;
                return new StoreDownVerdict(StoreDownOutcome.Refused, TimeSpan.Zero, refusal, kind, left);
            }
        }

        // The windows only count (their limit is never checked): the recharge's record.
        if (requests is not null)
        {
            record.Requests.Charge(1);
        }

        if (tokens is not null && demand.Tokens > 0)
        {
            record.Tokens.Charge(demand.Tokens);
        }

        return StoreDownVerdict.Admitted;
    }

    // A request admitted alone has ended (SharedTenantLimits.Settle): what it spent (usage null:
    // nothing, as TenantBudgetState.Settle) waits in the record for the store. Only a budget's
    // spend is kept in the store.
    public void Settle(in SharedDemand demand, Usage? usage, ModelPrice price)
    {
        if (demand.Budget is null || usage is not { } used)
        {
            return;
        }

        Record(demand.Tenant).Spend(used.TotalTokens, price.CostNanos(used), demand.Month);
        Volatile.Write(ref _unsent, 1);
    }

    // Whether an outage's decisions or spend wait to be charged into the store, or it has not been
    // logged as over yet.
    public bool Pending => Volatile.Read(ref _down) == 1 || Volatile.Read(ref _unsent) == 1;

    // The outage's record, handed over once: a decision or settlement racing this swap lands in
    // the new record and is charged by the next resync. Returns whether anything was decided alone
    // since the last take (spend alone does not count).
    public bool TakeRecord(out ConcurrentDictionary<string, AloneTenant> admitted)
    {
        Volatile.Write(ref _unsent, 0);
        admitted = Interlocked.Exchange(ref _admitted, new ConcurrentDictionary<string, AloneTenant>(StringComparer.Ordinal));
        return Interlocked.Exchange(ref _down, 0) == 1;
    }

    private AloneTenant Record(string tenant) =>
        Volatile.Read(ref _admitted).GetOrAdd(tenant, static (_, clock) => new AloneTenant(clock), time);
}
