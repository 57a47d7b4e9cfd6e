using System.Collections.Concurrent;
using AotProxy.Configuration;
using AotProxy.Limits;
using Microsoft.Extensions.Logging;

namespace AotProxy.Cluster;

// [cluster] store_down: what a replica does with a limited tenant's request when the store does
// not answer its shared take (LimitStage's one StoreDown branch; the replica's own full limits
// have passed already).
// - "local": each replica enforces its 1/N share of the limit, N the live members at its last
//   good heartbeat (at least 1): the share is floor(limit / N), so the shares never add up to more
//   than the limit, but at least 1 (with limit < N the replicas together may admit N). The share
//   is checked against this replica's own sliding window (all it admitted in the last 61 s, shared
//   or not), so a 60 s window wholly inside the outage holds at most the limit over the fleet.
//   Each admission is also recorded, per tenant and second, so that StoreResync can charge it into
//   the shared window once the store answers again (and never twice).
// - "closed": 503 with Retry-After (the heartbeat, when the store may be back), for limited
//   tenants only; tenants without limits never reach the shared take.
// The first decision of an outage is logged; StoreResync logs the end.
internal sealed class StoreDownPolicy(ClusterModel model, Func<ClusterView> view, ClusterTelemetry telemetry, TimeProvider time, ILogger logger)
{
    private readonly bool _closed = model.StoreDown == StoreDownModes.Closed;
    private ConcurrentDictionary<string, SlidingWindow> _admitted = new(StringComparer.Ordinal);
    private int _down;

    public string Mode => model.StoreDown;

    // N: the live members at the last heartbeat that reached the store, at least 1 (this replica).
    public int Members => Math.Max(1, view().Members.Length);

    public static long Share(long limit, int members) => Math.Max(1, limit / Math.Max(1, members));

    // requests: the tenant's own RPM on this replica, which has taken this request already.
    public StoreDownVerdict Decide(string tenant, MinuteLimit requests, long rpm)
    {
        var members = Members;
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            ClusterLog.DecidingAlone(logger, model.StoreDown, members);
        }

        StoreDownVerdict verdict;
        if (_closed)
        {
            verdict = new StoreDownVerdict(StoreDownOutcome.Closed, model.Heartbeat);
        }
        else
        {
            var share = Share(rpm, members);
            verdict = requests.WindowUsed <= share
                ? StoreDownVerdict.Admitted
                : new StoreDownVerdict(StoreDownOutcome.Refused, requests.WindowTimeUntil(0, share));
            if (verdict.Outcome == StoreDownOutcome.Admitted)
            {
                // The window only counts (its limit is never checked): the recharge's record.
                _admitted.GetOrAdd(tenant, static (_, clock) => new SlidingWindow(TokenBucket.MaxCapacity, clock), time).Charge(1);
            }
        }

        telemetry.CountDecision(verdict.Outcome);
        return verdict;
    }

    // Whether an outage's decisions wait to be charged into the store, or it has not been logged
    // as over yet.
    public bool Pending => Volatile.Read(ref _down) == 1;

    // The outage's record, handed over once: a decision racing this swap lands in the new record
    // and is charged by the next resync. false: nothing was decided alone since the last take.
    public bool TakeRecord(out ConcurrentDictionary<string, SlidingWindow> admitted)
    {
        admitted = Interlocked.Exchange(ref _admitted, new ConcurrentDictionary<string, SlidingWindow>(StringComparer.Ordinal));
        return Interlocked.Exchange(ref _down, 0) == 1;
    }
}
