using System.Collections.Concurrent;
using System.Collections.Frozen;
using AotProxy.Ledger;
using AotProxy.Limits;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Budget = (string Tenant, long Tokens, long MonthTokens, long Nanos, long MonthNanos, int Month);
using WindowSet = (System.Collections.Generic.List<(StackExchange.Redis.RedisKey Key, long[] Counts)> Requests, System.Collections.Generic.List<(StackExchange.Redis.RedisKey Key, long[] Counts)> Tokens);

namespace AotProxy.Cluster;

// What a replica puts back into the store when it answers again (docs/CLUSTER.md, "Redis down and
// back; Redis restarted empty"), into the keys SharedTenantLimits' scripts read (ClusterKeys).
// Run after every heartbeat that reached the store and as soon as the connection is restored;
// one run at a time, and nearly free when nothing happened (one GET of the epoch per beat).
// - Back with its data (the epoch is the one this replica knows): what it admitted alone while
//   the store did not answer (StoreDownPolicy's record: requests and tokens of the last 61 s, at
//   the Redis seconds they were admitted in, and what those requests spent, into the budgets) is
//   charged once. None of it held a place in the store, so nothing is counted twice; the record
//   is handed over before the script runs, so a script lost to a failure under-counts instead of
//   charging twice.
// - Back empty (aotproxy:epoch missing, so the first replica to see it sets a new one): each
//   replica seeds, once per epoch (SADD aotproxy:seeded:{epoch} gates it, in the same script),
//   what it knows: every request and token of its own windows of the last 61 s (shared or not:
//   the shared ones were lost with the store), and its budgets' spend (SeedBudgets) into the
//   spend fields the admit script checks, so a used-up budget stays used up.
// - A replica that starts adopts the epoch it finds (or sets one) and seeds its budgets once per
//   epoch (a fleet restarted with an empty store); its windows hold nothing the store lacks but
//   what it admitted alone before its first beat.
// What the store held in flight and reserved is not rebuilt after an empty restart: the requests
// in flight then run beside up to max_in_flight new ones, and their budget reservations are not
// counted until they settle (docs/CLUSTER.md states the bound).
// replica: this replica's name (known once ClusterMembership has started).
// ledger: with [store], this replica's shipper to the shared ledger on Postgres. Its own seed then
// claims its ledger file (aotproxy:seeded-ledgers:{epoch}: a file's spend is charged once per
// epoch, whatever the name of the process that holds it), and once an epoch it saw begin has
// settled, the spend of every ledger file in Postgres that no replica claimed (the files of
// replicas that are gone) is charged too, by one run of the same script (SeedLedgersAsync).
internal sealed class StoreResync(Func<string> replica, TenantLimits limits, StoreDownPolicy policy, ClusterTelemetry telemetry, ILogger logger, LedgerShipper? ledger = null) : IAsyncDisposable
{
    // KEYS[1] the epoch. ARGV[1] a new epoch, set if none is. Returns {epoch, 1 if set now}.
    private const string EpochScript = """
        local epoch = redis.call('GET', KEYS[1])
        if epoch then return {epoch, 0} end
        redis.call('SET', KEYS[1], ARGV[1])
        return {ARGV[1], 1}
        """;

    // KEYS[1] aotproxy:seeded:{epoch}; KEYS[2] aotproxy:seeded-ledgers:{epoch}; KEYS[3] the epoch;
    // KEYS[4 .. W+3] windows (the first R of them tenants' RPM bins, the rest TPM bins); KEYS[W+4 ..]
    // tenants' totals, group after group. ARGV[1] this replica's name to gate on the seeded set
    // ('' : no gate), ARGV[2] the epoch the store must still be in ('' : any), ARGV[3] W, ARGV[4] R,
    // then per window: n and n pairs (age in seconds, count), then per group of budgets: the ledger
    // file (ledger_id) whose spend it is, gated on the seeded-ledgers set ('' : no gate), n, and per
    // tenant: tokens, month tokens, nano-USD, month nano-USD, month (yyyymm, kept as "yyyy-MM" as
    // SharedTenantLimits' scripts keep it). The spend goes into the fields the admit script checks,
    // with its month rule (a later month starts the month's fields at 0; spend of an earlier month
    // counts for all time only). A replica already seeded in this epoch charges nothing, but claims
    // its ledger: that spend is in (its first seed and its settlements since). Returns {the requests
    // charged, or -1 when a gate (the replica's name, the epoch) said no; the ledgers claimed now}.
    private const string ChargeScript = """
        if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then return {-1, 0} end
        local gated = ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0
        local now = tonumber(redis.call('TIME')[1])
        local windows = tonumber(ARGV[3])
        local rpm = tonumber(ARGV[4])
        local a = 5
        local charged = 0
        for k = 4, windows + 3 do
          local n = tonumber(ARGV[a])
          a = a + 1
          if not gated then
            for i = 0, n - 1 do
              local count = tonumber(ARGV[a + 2 * i + 1])
              redis.call('HINCRBY', KEYS[k], now - tonumber(ARGV[a + 2 * i]), count)
              if k <= rpm + 3 then charged = charged + count end
            end
            redis.call('PEXPIRE', KEYS[k], 62000)
          end
          a = a + 2 * n
        end
        local k = windows + 4
        local claimed = 0
        while a <= #ARGV do
          local charge = not gated
          if ARGV[a] ~= '' then
            if redis.call('SADD', KEYS[2], ARGV[a]) == 1 then claimed = claimed + 1 else charge = false end
          end
          local n = tonumber(ARGV[a + 1])
          a = a + 2
          for i = 1, n do
            if charge then
              local m = tonumber(ARGV[a + 4])
              local month = string.format('%04d-%02d', math.floor(m / 100), m % 100)
              local current = redis.call('HGET', KEYS[k], 'month') or ''
              if month > current then
                redis.call('HSET', KEYS[k], 'month', month, 'month_spent', 0, 'month_usd_spent_nanos', 0)
                current = month
              end
              redis.call('HINCRBY', KEYS[k], 'budget_spent', ARGV[a])
              redis.call('HINCRBY', KEYS[k], 'usd_spent_nanos', ARGV[a + 2])
              if month == current then
                redis.call('HINCRBY', KEYS[k], 'month_spent', ARGV[a + 1])
                redis.call('HINCRBY', KEYS[k], 'month_usd_spent_nanos', ARGV[a + 3])
              end
            end
            k = k + 1
            a = a + 5
          end
        end
        if gated then return {-1, claimed} end
        return {charged, claimed}
        """;

    // KEYS[1] aotproxy:seeded:{epoch}; KEYS[2 ..] windows (each tenant's RPM then TPM bins).
    // Returns {the replicas that seeded the epoch, then per window a flat list of (age in seconds,
    // count) for its bins of the last 61 s on Redis's clock}.
    private const string ReadScript = """
        local now = tonumber(redis.call('TIME')[1])
        local out = {redis.call('SMEMBERS', KEYS[1])}
        for k = 2, #KEYS do
          local bins = redis.call('HGETALL', KEYS[k])
          local flat = {}
          for i = 1, #bins, 2 do
            local age = now - tonumber(bins[i])
            if age >= 0 and age < 61 then
              flat[#flat + 1] = age
              flat[#flat + 1] = tonumber(bins[i + 1])
            end
          end
          out[#out + 1] = flat
        end
        return out
        """;

    // KEYS[1] this replica's parts, aotproxy:res:{replica}. ARGV: pairs (field `kind|name|field`,
    // the amount this replica holds). Each part becomes what is held (a part the store has that is
    // not listed: 0), and the total it is part of moves by the difference, never below 0; a
    // worker's running that went down is published on its release channel, as the reaper does.
    // Idempotent: run again, it changes nothing. Returns the parts changed.
    private const string ReconcileScript = """
        local prefixes = {w = 'aotproxy:worker:', t = 'aotproxy:tenant:'}
        local held = {}
        for i = 1, #ARGV, 2 do held[ARGV[i]] = tonumber(ARGV[i + 1]) end
        local stored = redis.call('HGETALL', KEYS[1])
        for i = 1, #stored, 2 do
          if held[stored[i]] == nil then held[stored[i]] = 0 end
        end
        local changed = 0
        for field, amount in pairs(held) do
          local diff = amount - (tonumber(redis.call('HGET', KEYS[1], field)) or 0)
          local kind, name, f = string.match(field, '^([^|]+)|(.+)|([^|]+)$')
          local prefix = kind and prefixes[kind]
          if diff ~= 0 and prefix then
            local left = redis.call('HINCRBY', prefix .. name, f, diff)
            if left < 0 then
              redis.call('HSET', prefix .. name, f, 0)
              left = 0
            end
            if kind == 'w' and f == 'running' and diff < 0 then
              redis.call('PUBLISH', 'aotproxy:release:' .. name, left)
            end
            changed = changed + 1
          end
          if amount > 0 then
            redis.call('HSET', KEYS[1], field, amount)
          else
            redis.call('HDEL', KEYS[1], field)
          end
        end
        return changed
        """;

    private string? _epoch;
    private string? _awaited;
    private HashSet<string> _expected = [];
    private long _awaitedSince;
    private string[] _members = [];
    private int _running;
    private string? _ledgerEpoch; // an epoch this replica saw begin, until the ledgers' seed is in
    private string? _ledgerFailed; // the epoch whose ledgers' seed failed already (said once)
    private Task _ledgerSeed = Task.CompletedTask;
    private readonly CancellationTokenSource _stop = new();

    // The store's epoch as this replica last read it (null before its first beat).
    public string? Epoch => Volatile.Read(ref _epoch);

    // The connection failed (ClusterMembership): shared decisions wait for the next run to find
    // the epoch settled (StoreDownPolicy.Gated).
    public void Suspend() => policy.Suspend();

    // Shared decisions wait for this resync (StoreDownPolicy.Gated), since when: ClusterMembership.Health.
    public bool Resyncing => policy.Gated;

    public DateTimeOffset? ResyncingSince => policy.GatedSince;

    // The last seed from the shared ledger started (completed when none runs): tests wait on it.
    public Task LedgerSeed => Volatile.Read(ref _ledgerSeed);

    // '' without [store]: the own seed then claims no ledger file, as before.
    private string OwnLedger => ledger?.LedgerId.ToString() ?? string.Empty;

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
            var begun = (int)answer[1] == 1;
            if (begun)
            {
                ClusterLog.EpochStarted(logger, epoch);
            }

            var known = _epoch;
            var reconcile = epoch != known || policy.Gated || policy.Pending;
            if (epoch != known)
            {
                if (known is not null)
                {
                    policy.Suspend(); // a new epoch found with the connection up (a flush, a failover)
                }

                Await(epoch);
                if (ledger is not null && (begun || known is not null))
                {
                    // This replica saw the epoch begin (it set it, or found it replacing the one
                    // it knew): the gone replicas' spend is its to seed. An epoch joined later got
                    // it from whoever saw it begin, and may hold the spend of replicas of a version
                    // that claimed no ledger, which a seed from Postgres would count again.
                    Volatile.Write(ref _ledgerEpoch, epoch);
                }

                var alone = policy.TakeRecord(out var record);
                await SeedEpochAsync(db, epoch, joining: known is null, record, alone).ConfigureAwait(false);
                Volatile.Write(ref _epoch, epoch);
            }
            else if (policy.Pending)
            {
                var alone = policy.TakeRecord(out var record);
                var (charged, _) = await ChargeAsync(db, epoch, gate: false, Windows(record), [(string.Empty, Spend(record))]).ConfigureAwait(false);
                telemetry.CountRecharged("down", charged);
                if (alone)
                {
                    // Not for the spend alone of requests admitted alone that ended since.
                    ClusterLog.Resumed(logger, policy.Mode, charged, record.Count);
                }
            }

            if (reconcile)
            {
                await ReconcileAsync(db).ConfigureAwait(false);
            }

            await SettleAsync(db, epoch).ConfigureAwait(false);
            if (_awaited != epoch && Volatile.Read(ref _ledgerEpoch) == epoch && _ledgerSeed.IsCompleted && ledger is not null && !_stop.IsCancellationRequested)
            {
                // Settled: every expected replica claimed its own ledger first (or SeedWait passed).
                // Off the heartbeat: a Postgres that does not answer takes its connect timeout.
                var stop = _stop.Token;
                Volatile.Write(ref _ledgerSeed, Task.Run(() => SeedLedgersAsync(db, epoch, ledger, stop), CancellationToken.None));
            }
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

    // After an outage or an empty restart: this replica's parts of the reserved totals become what
    // it holds (HeldParts), so a settlement dropped while the store did not answer leaves nothing
    // counted, and requests in flight across an empty restart count again (in flight, budget
    // reservations, worker slots), each with its part, so the reaper and the settlements stay exact.
    private async Task ReconcileAsync(IDatabase db)
    {
        policy.Held.DropLeases(); // a lease's places become those used, which the part is set to
        var parts = policy.Held.Parts();
        var args = new RedisValue[2 * parts.Count];
        for (var i = 0; i < parts.Count; i++)
        {
            args[2 * i] = parts[i].Field;
            args[(2 * i) + 1] = parts[i].Amount;
        }

        var changed = (long)(await db.ScriptEvaluateAsync(ReconcileScript, [ClusterKeys.Reservations(replica())], args).ConfigureAwait(false));
        if (changed > 0)
        {
            ClusterLog.Reconciled(logger, changed);
        }
    }

    // A new epoch: the members whose seeds it waits for are those of the last settled run (the
    // store's member list went with its data) and those that beat since, this replica included.
    private void Await(string epoch)
    {
        if (_awaited == epoch)
        {
            return;
        }

        _awaited = epoch;
        _awaitedSince = policy.Time.GetTimestamp();
        _expected = [.. _members, .. policy.MemberNames, replica()];
        policy.Expect(_expected.Count);
    }

    // Reads the seeded set and the fleet's windows of every tenant with a minute limit (this
    // replica's own copied just before, so that its admissions in between count as the others',
    // never the reverse). A new epoch stays unsettled (shared decisions suspended, the last settled
    // read kept) until every member expected has seeded it, or SeedWait has passed (a member that
    // does not seed by then died with the store). Settled: the others' windows go to the policy,
    // which resumes shared decisions.
    private async Task SettleAsync(IDatabase db, string epoch)
    {
        var states = limits.States.Where(s => s.Requests is not null || s.Tokens is not null).ToList();
        var keys = new RedisKey[1 + 2 * states.Count];
        keys[0] = ClusterKeys.Seeded(epoch);
        var own = new (long[] Requests, long[] Tokens)[states.Count];
        for (var i = 0; i < states.Count; i++)
        {
            keys[1 + 2 * i] = ClusterKeys.Requests(states[i].Name);
            keys[2 + 2 * i] = ClusterKeys.Tokens(states[i].Name);
            own[i] = (Counts(states[i].Requests), Counts(states[i].Tokens));
        }

        var readAt = policy.Time.GetTimestamp();
        var answer = (RedisResult[])(await db.ScriptEvaluateAsync(ReadScript, keys).ConfigureAwait(false))!;
        if (_awaited == epoch)
        {
            var seeded = ((RedisResult[])answer[0]!).Select(r => (string)r!).ToHashSet(StringComparer.Ordinal);
            if (!_expected.IsSubsetOf(seeded))
            {
                if (policy.Time.GetElapsedTime(_awaitedSince) < policy.SeedWait)
                {
                    return;
                }

                ClusterLog.SeedsMissing(logger, epoch, string.Join(", ", _expected.Except(seeded).Order(StringComparer.Ordinal)), policy.SeedWait);
            }

            _awaited = null;
            policy.Expect(0);
        }

        var others = new Dictionary<string, OthersWindows>(states.Count, StringComparer.Ordinal);
        for (var i = 0; i < states.Count; i++)
        {
            var requests = Fleet(answer[1 + 2 * i]);
            var tokens = Fleet(answer[2 + 2 * i]);
            if (requests is not null || tokens is not null)
            {
                others[states[i].Name] = new OthersWindows(
                    requests is null ? OthersWindows.None : OthersWindows.Cumulative(requests, own[i].Requests),
                    tokens is null ? OthersWindows.None : OthersWindows.Cumulative(tokens, own[i].Tokens),
                    readAt);
            }
        }

        _members = [.. policy.MemberNames];
        policy.Resume(others.ToFrozenDictionary(StringComparer.Ordinal));
    }

    // A window's bins by age as the read script answers them; null when it held nothing.
    private static long[]? Fleet(RedisResult flat)
    {
        var values = (long[])flat!;
        if (values.Length == 0)
        {
            return null;
        }

        var counts = new long[SlidingWindow.WindowSeconds];
        for (var i = 0; i + 1 < values.Length; i += 2)
        {
            counts[values[i]] += values[i + 1];
        }

        return counts;
    }

    // A new epoch (the store lost what it held), once per epoch and replica: the seeded set gates
    // one script that charges everything this replica admitted in the last 61 s (the outage's
    // record is part of its windows) and its budgets' spend (SeedBudgets, which the outage's spend
    // is part of too). joining: this replica has known no epoch yet (it just started): only the
    // outage's record, the rest of its windows went to this epoch's store already.
    private async Task SeedEpochAsync(IDatabase db, string epoch, bool joining, ConcurrentDictionary<string, AloneTenant> record, bool alone)
    {
        var windows = joining ? Windows(record) : Windows(limits);
        var (charged, _) = await ChargeAsync(db, epoch, gate: true, windows, [(OwnLedger, SeedBudgets())]).ConfigureAwait(false);
        if (charged < 0 && joining && (alone || !record.IsEmpty))
        {
            // This name seeded this epoch before (a restarted process): its record still counts.
            (charged, _) = await ChargeAsync(db, epoch, gate: false, windows, [(string.Empty, Spend(record))]).ConfigureAwait(false);
        }

        var seeded = Math.Max(charged, 0);
        telemetry.CountRecharged(joining ? "down" : "reseed", seeded);
        ClusterLog.Seeded(logger, epoch, seeded, charged >= 0);
    }

    // The ledgers' seed of an epoch this replica saw begin, once it settled: per ledger file in
    // Postgres and tenant with a budget, the totals the startup seed reads (all time and this
    // month), charged by one script whose per-ledger gate claims each file once; the files the
    // replicas claimed with their own seeds are left out. Postgres failing (or Redis): the next
    // beat tries again, once the epoch holds it, never again.
    private async Task SeedLedgersAsync(IDatabase db, string epoch, LedgerShipper shipper, CancellationToken stop)
    {
        try
        {
            var now = policy.Time.GetUtcNow();
            var totals = await shipper.Shared.ReadTotalsByLedgerAsync(now, stop).ConfigureAwait(false);
            var budgeted = limits.States.Where(s => s.Budget is not null).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            var month = SharedDemand.MonthOf(now);
            var groups = totals
                .GroupBy(t => t.Ledger)
                .Select(g => (g.Key.ToString(), g.Where(t => budgeted.Contains(t.Totals.Tenant))
                    .Select(t => (Budget)(t.Totals.Tenant, t.Totals.LifetimeTokens, t.Totals.MonthTokens, t.Totals.LifetimeCostNanos, t.Totals.MonthCostNanos, month))
                    .ToList()))
                .ToList();
            var (_, claimed) = await ChargeAsync(db, epoch, gate: false, (new(), new()), groups, requireEpoch: true).ConfigureAwait(false);
            var current = Volatile.Read(ref _ledgerEpoch);
            if (current == epoch)
            {
                Interlocked.CompareExchange(ref _ledgerEpoch, null, current); // by reference: unless a new epoch came meanwhile
            }

            ClusterLog.LedgersSeeded(logger, epoch, claimed, groups.Count);
        }
        catch (Exception ex) when (LedgerShipper.IsStoreFailure(ex) || ex is RedisException)
        {
            if (ex is not RedisException)
            {
                shipper.Shared.ClearPool();
            }

            if (!stop.IsCancellationRequested && Interlocked.Exchange(ref _ledgerFailed, epoch) != epoch)
            {
                ClusterLog.LedgersSeedFailed(logger, epoch, ex.GetBaseException().Message);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopping: the next epoch's replicas seed what this one did not.
        }
    }

    // At stop (ClusterMembership's), before the connection and the shared ledger close: a seed
    // from the shared ledger under way is cancelled.
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await LedgerSeed.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    // What the budgets' re-seed charges: this replica's own spend, as its ledger holds it
    // (TenantLimits seeded the budgets from the ledger's per-tenant totals at startup and charges
    // every settlement since), for each tenant with a budget. Charged into aotproxy:tenant:{tenant}
    // once per epoch by the gated script, so the fleet's spend is the sum over its replicas' ledgers.
    private List<Budget> SeedBudgets()
    {
        var budgets = new List<Budget>();
        foreach (var state in limits.States)
        {
            if (state.Budget is { } budget)
            {
                var month = budget.Month;
                budgets.Add((state.Name, budget.SpentTokens, month.Tokens, budget.SpentNanos, month.Nanos, SharedDemand.MonthOf(month.Start)));
            }
        }

        return budgets;
    }

    // What the requests admitted alone spent: all of it in the month they were admitted in.
    private static List<Budget> Spend(ConcurrentDictionary<string, AloneTenant> record)
    {
        var budgets = new List<Budget>();
        foreach (var (tenant, alone) in record)
        {
            if (alone.Month > 0)
            {
                budgets.Add((tenant, alone.SpentTokens, alone.SpentTokens, alone.SpentNanos, alone.SpentNanos, alone.Month));
            }
        }

        return budgets;
    }

    private static WindowSet Windows(ConcurrentDictionary<string, AloneTenant> record)
    {
        var windows = (Requests: new List<(RedisKey, long[])>(), Tokens: new List<(RedisKey, long[])>());
        foreach (var (tenant, alone) in record)
        {
            windows.Requests.Add((ClusterKeys.Requests(tenant), Counts(alone.Requests)));
            windows.Tokens.Add((ClusterKeys.Tokens(tenant), Counts(alone.Tokens)));
        }

        return windows;
    }

    private static WindowSet Windows(TenantLimits limits)
    {
        var windows = (Requests: new List<(RedisKey, long[])>(), Tokens: new List<(RedisKey, long[])>());
        foreach (var state in limits.States)
        {
            if (state.Requests is { } requests)
            {
                windows.Requests.Add((ClusterKeys.Requests(state.Name), Counts(requests)));
            }

            if (state.Tokens is { } tokens)
            {
                windows.Tokens.Add((ClusterKeys.Tokens(state.Name), Counts(tokens)));
            }
        }

        return windows;
    }

    private static long[] Counts(SlidingWindow window)
    {
        var counts = new long[SlidingWindow.WindowSeconds];
        window.CopyCounts(counts);
        return counts;
    }

    private static long[] Counts(MinuteLimit? limit)
    {
        var counts = new long[SlidingWindow.WindowSeconds];
        limit?.CopyWindowCounts(counts);
        return counts;
    }

    // One run of the charge script. gate: on this replica's name (its seed of the epoch);
    // requireEpoch: only while the store is still in this epoch (a seed read from Postgres may
    // take long enough for another flush). Returns the requests charged (-1: a gate said no) and
    // the ledgers claimed now.
    private async Task<(long Charged, long Claimed)> ChargeAsync(IDatabase db, string epoch, bool gate, WindowSet windows, List<(string Ledger, List<Budget> Budgets)> groups, bool requireEpoch = false)
    {
        windows.Requests.RemoveAll(w => Array.TrueForAll(w.Counts, c => c == 0));
        windows.Tokens.RemoveAll(w => Array.TrueForAll(w.Counts, c => c == 0));
        groups.RemoveAll(g => g.Ledger.Length == 0 && g.Budgets.Count == 0);
        if (!gate && windows.Requests.Count == 0 && windows.Tokens.Count == 0 && groups.Count == 0)
        {
            return (0, 0);
        }

        var count = windows.Requests.Count + windows.Tokens.Count;
        var keys = new List<RedisKey>(3 + count + groups.Sum(g => g.Budgets.Count)) { ClusterKeys.Seeded(epoch), ClusterKeys.SeededLedgers(epoch), ClusterKeys.Epoch };
        var args = new List<RedisValue> { gate ? replica() : string.Empty, requireEpoch ? epoch : string.Empty, count, windows.Requests.Count };
        foreach (var (key, counts) in windows.Requests.Concat(windows.Tokens))
        {
            keys.Add(key);
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

        foreach (var (ledger, budgets) in groups)
        {
            args.AddRange([ledger, budgets.Count]);
            foreach (var budget in budgets)
            {
                keys.Add(ClusterKeys.Tenant(budget.Tenant));
                args.AddRange([budget.Tokens, budget.MonthTokens, budget.Nanos, budget.MonthNanos, budget.Month]);
            }
        }

        var answer = (RedisResult[])(await db.ScriptEvaluateAsync(ChargeScript, [.. keys], [.. args]).ConfigureAwait(false))!;
        return ((long)answer[0], (long)answer[1]);
    }
}
