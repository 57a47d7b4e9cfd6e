using System.Collections.Concurrent;
using System.Globalization;
using AotProxy.Limits;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// What a replica puts back into the store when it answers again (docs/CLUSTER.md, "Redis down and
// back; Redis restarted empty"). Run after every heartbeat that reached the store and as soon as
// the connection is restored; one run at a time, and nearly free when nothing happened (one GET
// of the epoch per beat).
// - Back with its data (the epoch is the one this replica knows): the requests it admitted alone
//   while the store did not answer (StoreDownPolicy's record, the last 61 s of it) are charged into
//   the tenants' shared windows once, at the Redis seconds they were admitted in. They never held a
//   place there, so nothing is counted twice; the record is handed over before the script runs,
//   so a script lost to a failure under-counts instead of charging twice.
// - Back empty (aotproxy:epoch missing, so the first replica to see it sets a new one): each
//   replica seeds, once per epoch (SADD aotproxy:seeded:{epoch} gates it, in the same script),
//   what it knows: every request of its own windows of the last 61 s (shared or not: the shared
//   ones were lost with the store), and its budgets' spend (SeedBudgets), so a used-up budget
//   stays used up.
// - A replica that starts adopts the epoch it finds (or sets one) and seeds its budgets once per
//   epoch (a fleet restarted with an empty store); its windows hold nothing the store lacks but
//   what it admitted alone before its first beat.
// replica: this replica's name (known once ClusterMembership has started).
internal sealed class StoreResync(Func<string> replica, TenantLimits limits, StoreDownPolicy policy, ClusterTelemetry telemetry, ILogger logger)
{
    // KEYS[1] the epoch. ARGV[1] a new epoch, set if none is. Returns {epoch, 1 if set now}.
    private const string EpochScript = """
        local epoch = redis.call('GET', KEYS[1])
        if epoch then return {epoch, 0} end
        redis.call('SET', KEYS[1], ARGV[1])
        return {ARGV[1], 1}
        """;

    // KEYS[1] aotproxy:seeded:{epoch}; KEYS[2 .. R+1] tenants' RPM bins; KEYS[R+2 ..] tenants' hashes.
    // ARGV[1] this replica's name to gate on the seeded set ('' : no gate), ARGV[2] R, then per RPM
    // key: n and n pairs (age in seconds, requests), then per tenant hash: lifetime tokens, month
    // tokens, lifetime nano-USD, month nano-USD, month (yyyy-MM). Returns the requests charged, or
    // -1 when the gate found this replica already seeded in this epoch.
    private const string ChargeScript = """
        if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return -1 end
        local now = tonumber(redis.call('TIME')[1])
        local windows = tonumber(ARGV[2])
        local a = 3
        local charged = 0
        for k = 2, windows + 1 do
          local n = tonumber(ARGV[a])
          a = a + 1
          for i = 1, n do
            local count = tonumber(ARGV[a + 1])
            redis.call('HINCRBY', KEYS[k], now - tonumber(ARGV[a]), count)
            charged = charged + count
            a = a + 2
          end
          redis.call('PEXPIRE', KEYS[k], 62000)
        end
        for k = windows + 2, #KEYS do
          redis.call('HINCRBY', KEYS[k], 'budget_spent', ARGV[a])
          redis.call('HINCRBY', KEYS[k], 'month_spent', ARGV[a + 1])
          redis.call('HINCRBY', KEYS[k], 'usd_spent_nanos', ARGV[a + 2])
          redis.call('HINCRBY', KEYS[k], 'month_usd_spent_nanos', ARGV[a + 3])
          redis.call('HSETNX', KEYS[k], 'month', ARGV[a + 4])
          a = a + 5
        end
        return charged
        """;

    private string? _epoch;
    private int _running;

    // The store's epoch as this replica last read it (null before its first beat).
    public string? Epoch => Volatile.Read(ref _epoch);

    public async Task RunAsync(IDatabase db)
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            return; // a run is under way; the next beat looks again
        }

        try
        {
            var answer = (RedisResult[])(await db.ScriptEvaluateAsync(EpochScript, [ClusterKeys.Epoch], [Guid.NewGuid().ToString("N")]).ConfigureAwait(false))!;
            var epoch = (string)answer[0]!;
            if ((int)answer[1] == 1)
            {
                ClusterLog.EpochStarted(logger, epoch);
            }

            var known = _epoch;
            if (epoch == known && !policy.Pending)
            {
                return;
            }

            var alone = policy.TakeRecord(out var record);
            if (epoch == known)
            {
                var charged = await ChargeAsync(db, epoch, gate: false, Windows(record), budgets: []).ConfigureAwait(false);
                telemetry.CountRecharged("down", charged);
                ClusterLog.Resumed(logger, policy.Mode, charged, record.Count);
            }
            else
            {
                await SeedEpochAsync(db, epoch, joining: known is null, record, alone).ConfigureAwait(false);
            }

            Volatile.Write(ref _epoch, epoch);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Unreachable again: the next beat that reaches the store tries again (the epoch is
            // not taken as known until its seed ran; the seeded set keeps that seed to one).
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    // A new epoch (the store lost what it held), once per epoch and replica: the seeded set gates
    // one script that charges everything this replica admitted in the last 61 s (the outage's
    // record is part of its windows) and its budgets' spend (SeedBudgets). joining: this replica
    // has known no epoch yet (it just started): only the outage's record, the rest of its windows
    // went to this epoch's store already. The budgets of the admit script plug in here.
    private async Task SeedEpochAsync(IDatabase db, string epoch, bool joining, ConcurrentDictionary<string, SlidingWindow> record, bool alone)
    {
        var windows = joining ? Windows(record) : Windows(limits);
        var charged = await ChargeAsync(db, epoch, gate: true, windows, SeedBudgets()).ConfigureAwait(false);
        if (charged < 0 && joining && alone)
        {
            // This name seeded this epoch before (a restarted process): its record still counts.
            charged = await ChargeAsync(db, epoch, gate: false, windows, budgets: []).ConfigureAwait(false);
        }

        var seeded = Math.Max(charged, 0);
        telemetry.CountRecharged(joining ? "down" : "reseed", seeded);
        ClusterLog.Seeded(logger, epoch, seeded, charged >= 0);
    }

    // What the budgets' re-seed charges: this replica's own spend, as its ledger holds it
    // (TenantLimits seeded the budgets from the ledger's per-tenant totals at startup and charges
    // every settlement since), for each tenant with a budget. Charged into aotproxy:tenant:{tenant}
    // once per epoch by the gated script, so the fleet's spend is the sum over its replicas' ledgers.
    private List<(string Tenant, long Tokens, long MonthTokens, long Nanos, long MonthNanos, string Month)> SeedBudgets()
    {
        var budgets = new List<(string, long, long, long, long, string)>();
        foreach (var state in limits.States)
        {
            if (state.Budget is { } budget)
            {
                var month = budget.Month;
                budgets.Add((state.Name, budget.SpentTokens, month.Tokens, budget.SpentNanos, month.Nanos, month.Start.ToString("yyyy-MM", CultureInfo.InvariantCulture)));
            }
        }

        return budgets;
    }

    private static List<(string Tenant, long[] Counts)> Windows(ConcurrentDictionary<string, SlidingWindow> record)
    {
        var windows = new List<(string, long[])>(record.Count);
        foreach (var (tenant, window) in record)
        {
            var counts = new long[SlidingWindow.WindowSeconds];
            window.CopyCounts(counts);
            windows.Add((tenant, counts));
        }

        return windows;
    }

    private static List<(string Tenant, long[] Counts)> Windows(TenantLimits limits)
    {
        var windows = new List<(string, long[])>();
        foreach (var state in limits.States)
        {
            if (state.Requests is { } requests)
            {
                var counts = new long[SlidingWindow.WindowSeconds];
                requests.CopyWindowCounts(counts);
                windows.Add((state.Name, counts));
            }
        }

        return windows;
    }

    private async Task<long> ChargeAsync(IDatabase db, string epoch, bool gate, List<(string Tenant, long[] Counts)> windows, List<(string Tenant, long Tokens, long MonthTokens, long Nanos, long MonthNanos, string Month)> budgets)
    {
        windows.RemoveAll(w => Array.TrueForAll(w.Counts, c => c == 0));
        if (!gate && windows.Count == 0)
        {
            return 0;
        }

        var keys = new List<RedisKey>(1 + windows.Count + budgets.Count) { ClusterKeys.Seeded(epoch) };
        var args = new List<RedisValue> { gate ? replica() : string.Empty, windows.Count };
        foreach (var (tenant, counts) in windows)
        {
            keys.Add(ClusterKeys.Requests(tenant));
            args.Add(counts.Count(c => c > 0));
            for (var age = 0; age < counts.Length; age++)
            {
                if (counts[age] > 0)
                {
                    args.Add(age);
                    args.Add(counts[age]);
                }
            }
        }

        foreach (var (tenant, tokens, monthTokens, nanos, monthNanos, month) in budgets)
        {
            keys.Add(ClusterKeys.Tenant(tenant));
            args.AddRange([tokens, monthTokens, nanos, monthNanos, month]);
        }

        return (long)(await db.ScriptEvaluateAsync(ChargeScript, [.. keys], [.. args]).ConfigureAwait(false));
    }
}
