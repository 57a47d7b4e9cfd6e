using System.Collections.Concurrent;
using System.Collections.Frozen;
using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;
using Microsoft.Extensions.Logging;

namespace AotProxy.Cluster;

// [cluster] store_down: what a replica does with a limited tenant's request when the store does
// not answer the admit script (LimitStage's one StoreDown branch; the replica's own full limits
// have passed already), or answers but is not to be trusted yet (Gated: the connection failed and
// StoreResync has not yet found the epoch settled, every seed of a new epoch in). Every limit the
// tenant has is shared, so every one is decided here:
// - "local": each replica enforces its 1/N share of each limit, N the live members at its last
//   good heartbeat (at least 1; while gated after a new epoch, at least the members expected to
//   seed it, as the store's member list starts empty): the share is floor(limit / N), so the
//   shares never add up to more than the limit, but at least 1 (with limit < N the replicas
//   together may admit N).
//   RPM and TPM: checked against this replica's own sliding windows (all it admitted in the last
//   61 s, shared or not), with the share taken of what the other replicas did not hold at the last
//   read (OthersWindows): floor((limit - others) / N), none once the others hold the limit. Every
//   admission in the window is some replica's own, and each admits alone only while its own count
//   is below that share, so a 60 s window spanning the outage's start holds at most the limit
//   (plus what the others admitted after the last read, at most one heartbeat of it, and N when
//   the room left is below N). max_in_flight: against this replica's own in-flight count.
//   Budgets: the budget reservations admitted alone in this outage against floor(budget / N),
//   never given back before the outage ends, so an outage adds at most one budget fleet-wide to
//   the spend the store held when it began (plus the prompt-estimate error of those requests),
//   whatever N. Each admission is recorded (AloneTenant): StoreResync charges the requests, tokens
//   and spend into the store once it answers again, and never twice.
// - "closed": 503 with Retry-After (the heartbeat, when the store may be back), for every tenant
//   with a limit; tenants without limits never reach the admit script.
// The first decision of an outage is logged; StoreResync logs the end.
internal sealed class StoreDownPolicy(ClusterModel model, Func<ClusterView> view, ClusterTelemetry telemetry, TimeProvider time, ILogger logger)
{
    // max_in_flight's refusal names no time: a place frees when a request ends.
    private static readonly TimeSpan InFlightWait = TimeSpan.FromSeconds(1);

    private readonly bool _closed = model.StoreDown == StoreDownModes.Closed;
    private ConcurrentDictionary<string, AloneTenant> _admitted = new(StringComparer.Ordinal);
    private FrozenDictionary<string, OthersWindows> _others = FrozenDictionary<string, OthersWindows>.Empty;
    private int _down;
    private int _unsent;
    private int _gated;
    private long _gatedSince;
    private int _expected;

    public string Mode => model.StoreDown;

    public TimeProvider Time => time;

    // What this replica holds in the store's reserved totals (SharedTenantLimits tells it).
    public HeldParts Held { get; } = new();

    // N: the live members at the last heartbeat that reached the store, at least 1 (this replica);
    // while gated, at least the members expected to seed the new epoch (the store's member list
    // was lost with it, so the first beats after an empty restart see only who beat since).
    public int Members => Math.Max(1, Math.Max(view().Members.Length, Gated ? Volatile.Read(ref _expected) : 0));

    // The names of the members at the last heartbeat that reached the store.
    public IEnumerable<string> MemberNames => view().Members.Select(m => m.Name);

    // How long a new epoch waits for the seeds of members that do not come: a member that died
    // with the store has its record expire within member_ttl, and a live one seeds on its next
    // beat (one heartbeat; a second one for a beat that ran into the reconnect).
    public TimeSpan SeedWait => model.MemberTtl + model.Heartbeat + model.Heartbeat;

    // Shared decisions are suspended (SharedTenantLimits asks before each admit script): from the
    // moment the connection fails until StoreResync has found the epoch settled after it, so that
    // no request is admitted against a store restarted empty that lacks some replica's seed.
    public bool Gated => Volatile.Read(ref _gated) == 1;

    public void Suspend()
    {
        if (!Gated)
        {
            // Before the gate, so that a reader who finds it closed finds the time too.
            Volatile.Write(ref _gatedSince, time.GetUtcNow().ToUnixTimeMilliseconds());
            Volatile.Write(ref _gated, 1);
        }
    }

    // Since when shared decisions are suspended (/api/cluster's degraded_since); null while not.
    public DateTimeOffset? GatedSince => Gated ? DateTimeOffset.FromUnixTimeMilliseconds(Volatile.Read(ref _gatedSince)) : null;

    // members: how many are expected to seed a new epoch (0: none is awaited).
    public void Expect(int members) => Volatile.Write(ref _expected, members);

    // The epoch is settled: the others' windows as just read (OthersWindows), and shared
    // decisions resume.
    public void Resume(FrozenDictionary<string, OthersWindows> others)
    {
        Volatile.Write(ref _others, others);
        Volatile.Write(ref _gated, 0);
    }

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

        var others = Volatile.Read(ref _others).GetValueOrDefault(demand.Tenant);
        var elapsed = others is null ? TimeSpan.Zero : time.GetElapsedTime(others.ReadAt);
        if (OverShare(lease.Requests, demand.Rpm, others?.Requests, elapsed, members) is { } requestsWait)
        {
            return new StoreDownVerdict(StoreDownOutcome.Refused, requestsWait, LimitRefusal.Requests);
        }

        if (OverShare(lease.Tokens, demand.Tpm, others?.Tokens, elapsed, members) is { } tokensWait)
        {
            return new StoreDownVerdict(StoreDownOutcome.Refused, tokensWait, LimitRefusal.Tokens);
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
        if (lease.Requests is not null)
        {
            record.Requests.Charge(1);
        }

        if (lease.Tokens is not null && demand.Tokens > 0)
        {
            record.Tokens.Charge(demand.Tokens);
        }

        return StoreDownVerdict.Admitted;
    }

    // A minute limit (RPM or TPM) against this replica's share of it: null within it, else the
    // wait until it would be. others: what the others held at the last read (OthersWindows), null
    // when nothing was read.
    private static TimeSpan? OverShare(MinuteLimit? window, long limit, long[]? others, TimeSpan elapsed, int members)
    {
        if (window is null)
        {
            return null;
        }

        var share = Share(limit, others is null ? 0 : OthersWindows.InWindow(others, elapsed), members);
        if (window.WindowUsed <= share)
        {
            return null;
        }

        // A share of 0 only comes from others that hold the whole limit, so they were read.
        return share == 0 ? OthersWindows.Wait(others!, elapsed) : window.WindowTimeUntil(0, share);
    }

    // This replica's share of a minute limit of which the others held `others` at the last read:
    // none once they hold it all, else floor((limit - others) / N), at least 1.
    private static long Share(long limit, long others, int members) =>
        others >= limit ? 0 : LocalShare.Of(limit - others, members);

    // A request admitted alone has ended, or a shared one whose settlement the store could not be
    // sent (SharedTenantLimits.Settle): what it spent (usage null: nothing, as
    // TenantBudgetState.Settle) waits in the record for the store, charged once by the resync
    // (into the same epoch; a new one is seeded from the ledger instead). Only a budget's spend
    // is kept in the store.
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
