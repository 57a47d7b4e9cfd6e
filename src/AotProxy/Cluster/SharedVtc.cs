using System.Collections.Concurrent;
using AotProxy.Admission;

namespace AotProxy.Cluster;

// One model's fair share fleet-wide (docs/CLUSTER.md, "Fair share"): the tenants' counters of
// service, in micro-tokens per weight, flushed to `aotproxy:vtc:{model}` by SharedFairShare every
// interval, and the fleet's backlogged tenants with their counters as the last flush read them.
// A request is charged when it takes its turn on the fleet's workers (TakeTurnAsync, before it
// takes a worker's slot fleet-wide) and settled exactly at its end: the usage's cost, or nothing
// when no worker served it. ModelAdmission also asks MayGrant before it grants a free slot.
internal sealed class SharedVtc(ModelAdmission model, TimeProvider time, TimeSpan stale)
{
    private const double Micro = 1_000_000;

    // The grant rule's slack in weighted tokens (input_weight x prompt + output_weight x
    // completion), as micro-tokens. It is what a tenant may run ahead of its share at any time, so
    // it must stay small against what the lightest tenant is served over the span one judges:
    // perf/cluster.sh case 2 serves t10 ~9,000 weighted tokens in its 35 s window, where 1,024
    // alone came to +10 % (RESULTS, "Issue 16: fair share with request shapes"); 256 is under 3 %.
    // It must also exceed what the fleet serves in one flush interval (~120 tokens in 50 ms
    // there), or replicas reading each other's counters 50 ms old could all hold back at once.
    public const long SlackMicro = 256 * 1_000_000L;

    private readonly ConcurrentDictionary<string, SharedVtcTenant> _tenants = new(StringComparer.Ordinal);
    private volatile KeyValuePair<string, long>[] _backlogged = [];
    private volatile FleetQueues _others = FleetQueues.Empty;
    private readonly List<FleetTurn> _turns = [];
    private readonly Lock _turnsLock = new();
    private long _freshAt; // 0: no answer yet
    private long _deferred;

    public ModelAdmission Model { get; } = model;

    // Grants the rule refused to this replica's fairest waiter (ModelAdmission then tries the
    // fleet's least-served waiter here, or leaves the slot to another replica), and turns it made
    // wait.
    public long Deferred => Interlocked.Read(ref _deferred);

    // The fleet's backlogged tenants and their counters (micro-tokens per weight) at the last flush.
    public IReadOnlyList<KeyValuePair<string, long>> Backlogged => _backlogged;

    // The other replicas' waiters and grant rate on this model at the last flush (FleetQueues);
    // Empty once that is older than `stale` (the flushes stopped: this replica's own queue only).
    public FleetQueues Others => IsStale() ? FleetQueues.Empty : _others;

    public SharedVtcTenant Tenant(string name) => _tenants.GetOrAdd(name, static n => new SharedVtcTenant(n));

    // Weighted tokens per weight in the counters' micro-tokens. Every charge of one request is
    // rounded from its running total (the turn, each chunk, the settlement: ToMicro(after) -
    // ToMicro(before)), so its rounding errors cancel and the fleet's counter ends at exactly
    // ToMicro(cost).
    public static long ToMicro(double perWeight) => (long)Math.Round(perWeight * Micro);

    // A settlement to `cost` of a request charged `charged` so far (per weight): a refund when
    // negative.
    public void Settle(string tenant, double cost, double charged) => Tenant(tenant).Add(ToMicro(cost) - ToMicro(charged));

    // The grant rule: `tenant`, this replica's fairest waiter, may take a free slot if its fleet
    // counter is within Slack / its weight of the least-served backlogged tenant elsewhere in the
    // fleet, i.e. at most Slack weighted tokens of service ahead of its share; otherwise the slot is
    // left to that tenant's replica. The slack is the same for every tenant and every request
    // shape: an allowance of the tenant's own request let short requests through far more often
    // (perf/RESULTS.md, case 2: 41/48/12 % for 70/20/10). Data older than `stale` (two flush
    // intervals): local decides.
    public bool MayGrant(string tenant, int weight)
    {
        if (Allows(Tenant(tenant), weight))
        {
            return true;
        }

        Interlocked.Increment(ref _deferred);
        return false;
    }

    // A granted request's turn on the fleet's workers, before it takes a worker's slot fleet-wide
    // (ForwardingStage): given at once, its charge (per weight) on the tenant's counter, while the
    // grant rule allows it and no turn waits here; else it waits until a flush's answer (or a
    // release here) lets the rule give it, turns here going first to the tenant the fleet has served
    // least. False when maxWait passed first. Without it, a replica's grants waited for the
    // workers' slots in a race that the replica releasing a slot wins, whatever the counters said
    // (perf/RESULTS.md, "Issue 16: fair share with request shapes"). handedOver: the request holds
    // the worker slot of a request preempted for it, whose turn was given: at once, charged (the
    // preempted one keeps its own charge for its next attempt and takes no second turn).
    public ValueTask<bool> TakeTurnAsync(string tenant, int weight, double chargePerWeight, TimeSpan maxWait, CancellationToken cancellationToken, bool handedOver = false)
    {
        var account = Tenant(tenant);
        var charge = ToMicro(chargePerWeight);
        FleetTurn turn;
        lock (_turnsLock)
        {
            if (handedOver || (_turns.Count == 0 && Allows(account, weight)))
            {
                account.Add(charge);
                account.AddForSlot(1);
                return new(true);
            }

            turn = new FleetTurn(account, weight, charge);
            _turns.Add(turn);
            account.AddQueued(1);
        }

        GiveTurns();
        if (!turn.Given.Task.IsCompleted)
        {
            Interlocked.Increment(ref _deferred);
        }

        return WaitTurnAsync(turn, maxWait, cancellationToken);
    }

    // A request that took its turn no longer waits for a worker's slot (it has one, or gave up).
    public void LeftForSlot(string tenant) => Tenant(tenant).AddForSlot(-1);

    // Turns to the waiters here whose tenants the rule allows now, least-served tenant first.
    public void GiveTurns()
    {
        lock (_turnsLock)
        {
            List<SharedVtcTenant>? refused = null;
            while (_turns.Count > 0)
            {
                FleetTurn? next = null;
                foreach (var turn in _turns)
                {
                    if ((next is null || turn.Tenant.Counter < next.Tenant.Counter) && refused?.Contains(turn.Tenant) != true)
                    {
                        next = turn;
                    }
                }

                if (next is null)
                {
                    return;
                }

                if (!Allows(next.Tenant, next.Weight))
                {
                    (refused ??= []).Add(next.Tenant);
                    continue;
                }

                _turns.Remove(next);
                next.Tenant.AddQueued(-1);
                next.Tenant.Add(next.Charge);
                next.Tenant.AddForSlot(1);
                next.Given.TrySetResult();
            }
        }
    }

    private async ValueTask<bool> WaitTurnAsync(FleetTurn turn, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        try
        {
            while (true)
            {
                var left = maxWait - time.GetElapsedTime(started);
                if (left <= TimeSpan.Zero)
                {
                    break;
                }

                try
                {
                    // Woken by the turn, or after `stale` at most: with no flush answered since
                    // (the store slow or down), the rule lets the replica decide alone.
                    await turn.Given.Task.WaitAsync(left < stale ? left : stale, time, cancellationToken).ConfigureAwait(false);
                    return true;
                }
                catch (TimeoutException)
                {
                    if (IsStale())
                    {
                        GiveTurns();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (!turn.Given.Task.IsCompleted)
        {
            Withdraw(turn);
            throw;
        }

        // Given just now after all: the charge is on the counter and the lease settles it.
        return !Withdraw(turn);
    }

    // Takes a turn not given off the list; false when it was given (and charged) meanwhile.
    private bool Withdraw(FleetTurn turn)
    {
        lock (_turnsLock)
        {
            if (!_turns.Remove(turn))
            {
                return false;
            }

            turn.Tenant.AddQueued(-1);
            return true;
        }
    }

    private bool IsStale()
    {
        var freshAt = Interlocked.Read(ref _freshAt);
        return freshAt == 0 || time.GetElapsedTime(freshAt) > stale;
    }

    private bool Allows(SharedVtcTenant account, int weight)
    {
        if (IsStale())
        {
            return true;
        }

        var least = long.MaxValue;
        foreach (var (name, counter) in _backlogged)
        {
            if (counter < least && !string.Equals(name, account.Name, StringComparison.Ordinal))
            {
                least = counter;
            }
        }

        return least == long.MaxValue || account.Counter <= least + (SlackMicro / Math.Max(weight, 1));
    }

    // The tenants a flush sends: those charged, waiting or in flight here since the last one.
    public List<(SharedVtcTenant Tenant, long Delta, int Waiting)> Take()
    {
        var sent = new List<(SharedVtcTenant, long, int)>();
        foreach (var account in Model.Tenants)
        {
            var tenant = Tenant(account.Name);
            var waiting = account.Waiting + tenant.Queued + tenant.ForSlot; // queued, waiting for a turn or for a worker's slot
            var delta = tenant.Take();
            // In flight here too: the grant rule and the turns read its counter, which only the
            // answer to a flush that sends it brings up to date.
            if (delta != 0 || waiting > 0 || tenant.LastWaiting > 0 || account.InFlight > 0)
            {
                tenant.LastWaiting = waiting;
                sent.Add((tenant, delta, waiting));
            }
        }

        return sent;
    }

    public void Answered(List<(SharedVtcTenant Tenant, long Delta, int Waiting)> sent, long[] counters, KeyValuePair<string, long>[] backlogged, FleetQueues? others = null)
    {
        _others = others ?? FleetQueues.Empty;
        for (var i = 0; i < sent.Count; i++)
        {
            sent[i].Tenant.Answered(counters[i]);
        }

        _backlogged = backlogged;
        Interlocked.Exchange(ref _freshAt, time.GetTimestamp());
        GiveTurns();
    }

    public static void Failed(List<(SharedVtcTenant Tenant, long Delta, int Waiting)> sent)
    {
        foreach (var (tenant, _, _) in sent)
        {
            tenant.Failed();
            tenant.LastWaiting = int.MaxValue; // sent again next time, whatever it waits then
        }
    }
}
