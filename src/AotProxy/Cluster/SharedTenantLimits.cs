using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Limits;
using AotProxy.Threading;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// A tenant's limits fleet-wide (docs/CLUSTER.md): RPM, TPM, max_in_flight and the budgets, checked
// and charged on Redis's clock by the admit script. A demand with a budget runs it once per request
// and is given back or settled by one fire-and-forget script from the data plane's finally
// (LimitLease.Settle): its reservations are real amounts. A demand without one takes the script's
// grant in blocks (TenantLease): far from the tenant's limits the script grants more than the
// request, which later requests of this replica take with no call while the Redis second lasts,
// and what goes back is sent by one flush per tenant every FlushInterval.
// RPM and TPM are 61 one-second bins, (now - 61, now], like the local SlidingWindow: a request
// decided in second s counts until s + 61, so any 60 s of real time holds at most the limit of
// decisions (a block's requests are used only while their second lasts); a replica sends after
// its decision, which adds at most one request per replica to a window of send times.
// in_flight and the budgets' reservations are totals in `aotproxy:tenant:{tenant}`, each also
// recorded as this replica's part in `aotproxy:res:{replica}` (for a lease, the places leased), so
// that a dead replica's parts are subtracted exactly once by whoever reaps it (ClusterMembership),
// and a settlement subtracts no more than this replica still holds there.
// connection: the replica's one connection (ClusterMembership's), null until it is made;
// replica: its name (set before the connection is); storeDown: [cluster] store_down, what decides
// while the store does not answer (null: the replica's own limits alone, which passed already);
// members: the live members (the lease script grants each a share of what is free).
internal sealed class SharedTenantLimits : IAsyncDisposable
{
    // KEYS: rpm bins, tpm bins, tenant totals, this replica's parts. ARGV: [1] tenant, [2] rpm,
    // [3] tpm, [4] tokens for tpm, [5] max_in_flight, [6..9] budget_tokens, monthly_budget_tokens,
    // budget_usd and monthly_budget_usd in nanos (0 = not set), [10] tokens and [11] nanos
    // reserved against them, [12] month (yyyymm, kept as "yyyy-MM" like StoreResync's seed, which
    // compares in order as text), [13] requests, [14] tokens and [15] places wanted (a block; 1,
    // the tokens and 1 for a budgeted request), [16] live members. 0 means "not limited"
    // throughout. The checks run in the local stage's order (in flight, budgets, RPM, TPM), each on
    // what the request needs, and nothing is written until all passed. Each limit then grants more
    // than the need, up to the want, only far from it: at most floor(free / (8 x members)) more
    // (free = limit - counted), so the units replicas hold unused can refuse another only within
    // the last 1/8 of what was free. Returns {second, microseconds of Redis's TIME, requests, tokens,
    // places granted}, or {0, refusal (LimitRefusal), wait in seconds, budget kind (BudgetKind), what
    // that budget had left}. Lua numbers are doubles: budgets compare exactly up to 2^53 (9e15 tokens
    // or nano-USD, $9M); the counters themselves are Redis integers.
    private const string AdmitScript = """
        local time = redis.call('TIME')
        local now = tonumber(time[1])
        local function num(v) return tonumber(v) or 0 end
        local members = math.max(num(ARGV[16]), 1)
        local function window(key, n, limit)
          local bins = redis.call('HGETALL', key)
          local total = 0
          for i = 1, #bins, 2 do
            if tonumber(bins[i]) <= now - 61 then
              redis.call('HDEL', key, bins[i])
            else
              total = total + tonumber(bins[i + 1])
            end
          end
          if total + n <= limit then return 0, total end
          -- Refused: only now the bins in order, for the wait (no table per bin on the common path).
          local counted = {}
          for i = 1, #bins, 2 do
            local second, count = tonumber(bins[i]), tonumber(bins[i + 1])
            if second > now - 61 and count > 0 then counted[#counted + 1] = {second, count} end
          end
          table.sort(counted, function(a, b) return a[1] < b[1] end)
          for _, bin in ipairs(counted) do
            total = total - bin[2]
            if total + n <= limit then return math.max(bin[1] + 61 - now, 1), 0 end
          end
          return 61, 0
        end
        local function grant(limit, counted, need, want)
          local free = limit - counted
          return need + math.max(0, math.min(want - need, math.floor(free / (8 * members)), free - need))
        end
        local t = KEYS[3]
        local place = 't|' .. ARGV[1] .. '|'
        local rpm, tpm, tokens, maxInFlight = num(ARGV[2]), num(ARGV[3]), num(ARGV[4]), num(ARGV[5])
        local limits = {num(ARGV[6]), num(ARGV[7]), num(ARGV[8]), num(ARGV[9])}
        local rt, rn = num(ARGV[10]), num(ARGV[11])
        local month = string.format('%04d-%02d', math.floor(num(ARGV[12]) / 100), num(ARGV[12]) % 100)
        local budget = limits[1] > 0 or limits[2] > 0 or limits[3] > 0 or limits[4] > 0
        local places = 0
        if maxInFlight > 0 then
          local inFlight = num(redis.call('HGET', t, 'in_flight'))
          if inFlight >= maxInFlight then return {0, 3, 1, 0, 0} end
          places = grant(maxInFlight, inFlight, 1, num(ARGV[15]))
        end
        local rolled = false
        if budget then
          local f = redis.call('HMGET', t, 'budget_spent', 'budget_reserved', 'usd_spent_nanos', 'usd_reserved_nanos', 'month', 'month_spent', 'month_usd_spent_nanos')
          local mt, mn = num(f[6]), num(f[7])
          if month > (f[5] or '') then
            rolled = true
            mt, mn = 0, 0
          end
          local used = {num(f[1]) + num(f[2]), mt + num(f[2]), num(f[3]) + num(f[4]), mn + num(f[4])}
          local r = {rt, rt, rn, rn}
          for k = 1, 4 do
            if limits[k] > 0 and used[k] + r[k] > limits[k] then
              return {0, k <= 2 and 4 or 5, 0, k, math.max(limits[k] - used[k], 0)}
            end
          end
        end
        local requests, granted = 0, 0
        if rpm > 0 then
          local wait, counted = window(KEYS[1], 1, rpm)
          if wait > 0 then return {0, 1, wait, 0, 0} end
          requests = grant(rpm, counted, 1, num(ARGV[13]))
        end
        if tpm > 0 then
          local wait, counted = window(KEYS[2], tokens, tpm)
          if wait > 0 then return {0, 2, wait, 0, 0} end
          granted = grant(tpm, counted, tokens, num(ARGV[14]))
        end
        if places > 0 then
          redis.call('HINCRBY', t, 'in_flight', places)
          redis.call('HINCRBY', KEYS[4], place .. 'in_flight', places)
        end
        if budget then
          if rolled then redis.call('HSET', t, 'month', month, 'month_spent', 0, 'month_usd_spent_nanos', 0) end
          if rt > 0 then
            redis.call('HINCRBY', t, 'budget_reserved', rt)
            redis.call('HINCRBY', KEYS[4], place .. 'budget_reserved', rt)
          end
          if rn > 0 then
            redis.call('HINCRBY', t, 'usd_reserved_nanos', rn)
            redis.call('HINCRBY', KEYS[4], place .. 'usd_reserved_nanos', rn)
          end
        end
        if requests > 0 then
          redis.call('HINCRBY', KEYS[1], now, requests)
          redis.call('PEXPIRE', KEYS[1], 62000)
        end
        if granted > 0 then
          redis.call('HINCRBY', KEYS[2], now, granted)
          redis.call('PEXPIRE', KEYS[2], 62000)
        end
        return {now, tonumber(time[2]), requests, granted, places}
        """;

    // KEYS as AdmitScript. ARGV: [1] tenant, [2] in flight to release, [3] tokens and [4] nanos
    // reserved to release, [5] tokens and [6] nanos spent, [7] month (yyyymm, kept as "yyyy-MM"),
    // then triples (second, requests, tokens) to add to that second's bins (negative: given back).
    // One request's settlement (a budgeted demand, one triple) or a flush of a tenant's lease (many
    // triples, no budget). A bin that left the window (or a store restarted empty) has nothing to
    // give back; a part this replica no longer holds (reaped) is not subtracted again.
    private const string SettleScript = """
        local t = KEYS[3]
        local place = 't|' .. ARGV[1] .. '|'
        local function release(field, n)
          if n <= 0 then return end
          local held = tonumber(redis.call('HGET', KEYS[4], place .. field)) or 0
          local back = math.min(held, n)
          if back <= 0 then return end
          redis.call('HINCRBY', t, field, -back)
          if back == held then
            redis.call('HDEL', KEYS[4], place .. field)
          else
            redis.call('HINCRBY', KEYS[4], place .. field, -back)
          end
        end
        for i = 8, #ARGV, 3 do
          local second, requests, tokens = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
          if requests ~= 0 and redis.call('HEXISTS', KEYS[1], second) == 1 then
            redis.call('HINCRBY', KEYS[1], second, requests)
          end
          if tokens ~= 0 and redis.call('HEXISTS', KEYS[2], second) == 1 then
            redis.call('HINCRBY', KEYS[2], second, tokens)
          end
        end
        release('in_flight', tonumber(ARGV[2]))
        release('budget_reserved', tonumber(ARGV[3]))
        release('usd_reserved_nanos', tonumber(ARGV[4]))
        local tokens, nanos = tonumber(ARGV[5]), tonumber(ARGV[6])
        if tokens > 0 or nanos > 0 then
          local m = tonumber(ARGV[7])
          local month = string.format('%04d-%02d', math.floor(m / 100), m % 100)
          if month > (redis.call('HGET', t, 'month') or '') then
            redis.call('HSET', t, 'month', month, 'month_spent', 0, 'month_usd_spent_nanos', 0)
          end
          redis.call('HINCRBY', t, 'budget_spent', tokens)
          redis.call('HINCRBY', t, 'month_spent', tokens)
          redis.call('HINCRBY', t, 'usd_spent_nanos', nanos)
          redis.call('HINCRBY', t, 'month_usd_spent_nanos', nanos)
        end
        return 0
        """;

    // A block of a stream's completion tokens (Limits/StreamBudget, stream_budget_cutoff), leased
    // from every budget of the tenant. KEYS as AdmitScript. ARGV: [1] tenant, [2..5] budget_tokens,
    // monthly_budget_tokens, budget_usd and monthly_budget_usd in nanos (0 = not set), [6] nanos a
    // token (the output price), [7] month (yyyymm), [8] the most tokens a block holds, [9] live
    // members. What is left is counted as the admit script counts it (spent + reserved, the month's
    // rule), in tokens (a USD budget's nanos left / the price, rounded down); the block is
    // min(most, floor(left / (4 x members))), at least 1 and never more than left, so the last
    // tokens of a budget are leased one by one rather than held idle by one stream. Reserved like
    // the admit's reservations (budget_reserved, usd_reserved_nanos) and recorded as this replica's
    // parts, which the settlement releases and the reaper subtracts once. Returns the tokens
    // leased, 0 when no budget has one left.
    private const string StreamBlockScript = """
        local function num(v) return tonumber(v) or 0 end
        local t = KEYS[3]
        local place = 't|' .. ARGV[1] .. '|'
        local f = redis.call('HMGET', t, 'budget_spent', 'budget_reserved', 'usd_spent_nanos', 'usd_reserved_nanos', 'month', 'month_spent', 'month_usd_spent_nanos')
        local m = num(ARGV[7])
        local month = string.format('%04d-%02d', math.floor(m / 100), m % 100)
        local mt, mn = num(f[6]), num(f[7])
        local rolled = month > (f[5] or '')
        if rolled then mt, mn = 0, 0 end
        local used = {num(f[1]) + num(f[2]), mt + num(f[2]), num(f[3]) + num(f[4]), mn + num(f[4])}
        local per, most = num(ARGV[6]), num(ARGV[8])
        local left = nil
        for k = 1, 4 do
          local limit = num(ARGV[k + 1])
          if limit > 0 and (k <= 2 or per > 0) then
            local room = limit - used[k]
            if k > 2 then room = math.floor(room / per) end
            if left == nil or room < left then left = room end
          end
        end
        if left == nil then left = most * 4 * math.max(num(ARGV[9]), 1) end
        if left <= 0 then return 0 end
        local block = math.min(left, math.max(1, math.min(most, math.floor(left / (4 * math.max(num(ARGV[9]), 1))))))
        if rolled then redis.call('HSET', t, 'month', month, 'month_spent', 0, 'month_usd_spent_nanos', 0) end
        redis.call('HINCRBY', t, 'budget_reserved', block)
        redis.call('HINCRBY', KEYS[4], place .. 'budget_reserved', block)
        if per > 0 then
          redis.call('HINCRBY', t, 'usd_reserved_nanos', block * per)
          redis.call('HINCRBY', KEYS[4], place .. 'usd_reserved_nanos', block * per)
        end
        return block
        """;

    // The most tokens one stream block holds: a round trip per 64 chunks of a long stream.
    public const long MaxStreamBlock = 64;

    // LeaseStreamBlockAsync's answer when the store did not (or may not yet) answer.
    public const long StoreDownBlock = -1;

    private static readonly ClusterScript StreamBlock = new(StreamBlockScript);

    // 100 ms: what a lease gives back waits at most this long (a TPM settlement above its
    // estimate is under-counted that long), for one script per tenant with returns, 10 a second.
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    private static readonly ClusterScript Admit = new(AdmitScript);

    private const int AdmitArgs = 16;

    // The settle script's arguments before its triples.
    private const int SettleArgs = 7;

    // The admit's argument arrays, reused once answered: about as many as admits wait at once.
    private const int MaxPooledArgs = 256;

    private readonly Func<IConnectionMultiplexer?> _connection;
    private readonly Func<string> _replica;
    private readonly StoreDownPolicy? _storeDown;
    private readonly Func<int> _members;
    private readonly TimeProvider _time;
    private readonly BackgroundLoop _loops = new();

    // Each tenant's four keys, built once: StackExchange.Redis only reads the array.
    private readonly ConcurrentDictionary<string, RedisKey[]> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TenantLease> _leases = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<RedisValue[]> _admitArgs = new();

    public SharedTenantLimits(Func<IConnectionMultiplexer?> connection, Func<string> replica, StoreDownPolicy? storeDown = null, Func<int>? members = null)
    {
        _connection = connection;
        _replica = replica;
        _storeDown = storeDown;
        _members = members ?? (() => storeDown?.Members ?? 1);
        _time = storeDown?.Time ?? TimeProvider.System;
        if (storeDown is not null)
        {
            storeDown.Held.DropLeases = DropLeases;
        }
    }

    public StoreDownPolicy? StoreDown => _storeDown;

    // The flush of the leases' returns, every FlushInterval until disposed (after membership
    // started: the replica is named).
    public void Start() => _loops.Start(RunAsync);

    // Stopping: the loop ends, then what the leases hold goes back once more.
    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
        try
        {
            await FlushAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Gone with the store: the bins leave the window, the reaper takes the places.
        }
    }

    // StoreDown when the store cannot answer (not connected yet, down, timed out): the caller
    // decides with its own limits alone. The one place that says so. Without a budget, the
    // tenant's block decides with no call while it lasts and covers the request.
    public ValueTask<SharedTake> TryAdmitAsync(SharedDemand demand)
    {
        // Gated: the connection failed and the resync has not found the epoch settled yet.
        if (_connection() is not { IsConnected: true } redis || _storeDown is { Gated: true })
        {
            return ValueTask.FromResult(SharedTake.StoreDown);
        }

        return demand.Budget is not null ? AdmitAsync(redis, demand) : LeaseAsync(redis, LeaseOf(demand.Tenant), demand);
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<SharedTake> LeaseAsync(IConnectionMultiplexer redis, TenantLease lease, SharedDemand demand)
    {
        // Bounded by the calls of other requests that took what a call leased before this one looked.
        while (true)
        {
            var now = _time.GetTimestamp();
            if (lease.TryTake(demand, now, out var second, out var call))
            {
                return new SharedTake(SharedTakeOutcome.Taken, second, TimeSpan.Zero);
            }

            if (call is not null)
            {
                // What refused that call (no answer; no request, or no place, left) refuses this
                // one too: it is not asked again, one script after another.
                var answer = await call.ConfigureAwait(false);
                if (answer.Outcome == SharedTakeOutcome.StoreDown || answer.Refusal is LimitRefusal.Requests or LimitRefusal.InFlight)
                {
                    return answer;
                }

                continue;
            }

            var take = SharedTake.StoreDown;
            try
            {
                var want = lease.Want(demand, now, _time.TimestampFrequency);
                take = await AdmitAsync(redis, demand, want, lease).ConfigureAwait(false);
                return take;
            }
            finally
            {
                lease.EndCall(take);
            }
        }
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<SharedTake> AdmitAsync(IConnectionMultiplexer redis, SharedDemand demand, (long Requests, long Tokens, long Places) want = default, TenantLease? lease = null)
    {
        var budget = demand.Budget;
        var args = _admitArgs.TryDequeue(out var reused) ? reused : new RedisValue[AdmitArgs];
        args[0] = demand.Tenant;
        args[1] = demand.Rpm;
        args[2] = demand.Tpm;
        args[3] = demand.Tokens;
        args[4] = demand.MaxInFlight;
        args[5] = budget?.Tokens ?? 0;
        args[6] = budget?.MonthlyTokens ?? 0;
        args[7] = budget?.Nanos ?? 0;
        args[8] = budget?.MonthlyNanos ?? 0;
        args[9] = budget is null ? 0 : demand.BudgetTokens;
        args[10] = budget is null ? 0 : demand.BudgetNanos;
        args[11] = demand.Month;
        args[12] = lease is null ? 1 : want.Requests;
        args[13] = lease is null ? demand.Tokens : Math.Max(want.Tokens, demand.Tokens);
        args[14] = lease is null ? 1 : want.Places;
        args[15] = _members();
        try
        {
            var sent = _time.GetTimestamp();
            var result = (RedisResult[])(await Admit.EvaluateAsync(redis.GetDatabase(), KeysOf(demand.Tenant), args).ConfigureAwait(false))!;

            // Answered: the client has written the arguments and holds them no longer, so the
            // next admit may fill them (an admit that failed may still be queued: not reused).
            if (_admitArgs.Count < MaxPooledArgs)
            {
                _admitArgs.Enqueue(args);
            }

            var second = (long)result[0];
            if (second == 0)
            {
                return new SharedTake(SharedTakeOutcome.Refused, 0, TimeSpan.FromSeconds((long)result[2]), (LimitRefusal)(long)result[1], (BudgetKind)(long)result[3], (long)result[4]);
            }

            if (lease is null)
            {
                _storeDown?.Held.Take(demand); // what the resync re-seeds after an empty restart
                return new SharedTake(SharedTakeOutcome.Taken, second, TimeSpan.Zero);
            }

            // Redis's instant lies between sent and the answer: the block ends by the local clock
            // no later than its second does on Redis's.
            var until = sent + ((1_000_000 - (long)result[1]) * _time.TimestampFrequency / 1_000_000);
            var places = (long)result[4];
            _storeDown?.Held.Lease(demand.Tenant, places);
            lease.Grant(demand, second, until, (long)result[2], (long)result[3], places, _time.GetTimestamp());
            return new SharedTake(SharedTakeOutcome.Taken, second, TimeSpan.Zero);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return SharedTake.StoreDown;
        }
    }

    // The next block of a stream's completion tokens (StreamBlockScript): the tokens leased, 0 when
    // the fleet's budgets have none left, StoreDownBlock when the store does not answer (not
    // connected, gated by a resync, an error or timeout). The demand is the stream's admitted one
    // (its tenant, budgets and month); what is leased is released by its settlement
    // (SharedPlace.WithLeased), and held for the resync's reconcile until then (HeldParts).
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<long> LeaseStreamBlockAsync(SharedDemand demand, long outputNanos)
    {
        if (_connection() is not { IsConnected: true } redis || _storeDown is { Gated: true } || demand.Budget is not { } budget)
        {
            return StoreDownBlock;
        }

        RedisValue[] args = [demand.Tenant, budget.Tokens, budget.MonthlyTokens, budget.Nanos, budget.MonthlyNanos, outputNanos, demand.Month, MaxStreamBlock, _members()];
        try
        {
            var leased = (long)await StreamBlock.EvaluateAsync(redis.GetDatabase(), KeysOf(demand.Tenant), args).ConfigureAwait(false);
            if (leased > 0)
            {
                _storeDown?.Held.Take(demand.BudgetOnly(leased, leased * outputNanos));
            }

            return leased;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return StoreDownBlock;
        }
    }

    // admitted = false: the request never went upstream, its place in the minute and its whole
    // token reservation go back. Otherwise the token bin moves to the usage (none known: the
    // reservation stays, as the local TPM lease does) and the budgets charge it (none known:
    // nothing, as TenantBudgetState.Settle). in flight and the budget reservations are released
    // either way. A leased request (no budget) settles into its tenant's lease, which the next
    // flush sends. Not sent if the store is unreachable: bins leave the window within 61 s, the
    // spend goes into the outage's record and the parts are reconciled by the resync
    // (StoreDownPolicy, StoreResync). A request store_down admitted alone settles into the
    // outage's record instead.
    public void Settle(in SharedPlace place, bool admitted, Usage? usage, ModelPrice price)
    {
        if (place.Alone)
        {
            _storeDown?.Settle(place.Demand, admitted ? usage : null, price);
            return;
        }

        var demand = place.Demand;
        var used = admitted ? usage : null;
        var moved = demand.Tpm <= 0 ? 0 : !admitted ? -demand.Tokens : used is { } u ? u.TotalTokens - demand.Tokens : 0;
        if (demand.Budget is null)
        {
            var back = LeaseOf(demand.Tenant).Settle(demand, place.Second, admitted, moved, _time.GetTimestamp());
            if (back > 0)
            {
                _storeDown?.Held.Lease(demand.Tenant, -back);
            }

            return;
        }

        // Before the script is sent: a resync's reconcile never counts a part its release follows.
        _storeDown?.Held.Release(demand);
        if (_connection() is not { IsConnected: true } redis)
        {
            // Dropped: the resync reconciles the parts; the spend waits in the outage's record.
            _storeDown?.Settle(demand, used, price);
            return;
        }

        RedisValue[] args =
        [
            demand.Tenant, demand.MaxInFlight > 0 ? 1 : 0, demand.BudgetTokens, demand.BudgetNanos,
            used is { } spent ? spent.TotalTokens : 0, used is { } cost ? price.CostNanos(cost) : 0, demand.Month,
            place.Second, !admitted && demand.Rpm > 0 ? -1 : 0, moved,
        ];
        _ = redis.GetDatabase().ScriptEvaluateAsync(SettleScript, KeysOf(demand.Tenant), args, CommandFlags.FireAndForget);
    }

    // One settle script per tenant whose lease has something to give back: requests and tokens by
    // second, places leased above use. Awaited, so a test (and the stop) can wait for it; internal
    // for the tests, which flush when they choose.
    internal async Task FlushAsync()
    {
        if (_connection() is not { IsConnected: true } redis || _storeDown is { Gated: true } || _leases.IsEmpty)
        {
            return; // kept for the next flush; an outage's resync drops them (DropLeases)
        }

        var db = redis.GetDatabase();
        List<Task>? sent = null;
        var now = _time.GetTimestamp();
        foreach (var lease in _leases.Values)
        {
            var args = lease.TakeReturns(now, SettleArgs, out var places, out var idle);
            if (idle > 0)
            {
                _storeDown?.Held.Lease(lease.Tenant, -idle);
            }

            if (args is null)
            {
                continue;
            }

            args[0] = lease.Tenant;
            args[1] = places;
            args[2] = 0;
            args[3] = 0;
            args[4] = 0;
            args[5] = 0;
            args[6] = 0;
            (sent ??= []).Add(db.ScriptEvaluateAsync(SettleScript, lease.Keys, args));
        }

        if (sent is not null)
        {
            await Task.WhenAll(sent).ConfigureAwait(false);
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(FlushInterval, _time);
        while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
        {
            try
            {
                await FlushAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // Lost with the connection: the resync after it reconciles the places; the bins'
                // returns are dropped (they only over-count, for the rest of their minute).
            }
        }
    }

    // After an outage or an empty restart, before the resync's reconcile copies HeldParts: every
    // lease is dropped (its places leased become those used).
    private void DropLeases()
    {
        foreach (var lease in _leases.Values)
        {
            var change = lease.Drop();
            if (change != 0)
            {
                _storeDown?.Held.Lease(lease.Tenant, change);
            }
        }
    }

    private TenantLease LeaseOf(string tenant) =>
        _leases.TryGetValue(tenant, out var lease) ? lease : _leases.GetOrAdd(tenant, static (name, limits) => new TenantLease(name, limits.KeysOf(name)), this);

    private RedisKey[] KeysOf(string tenant) =>
        _keys.TryGetValue(tenant, out var keys) ? keys
        : _keys.GetOrAdd(tenant, [ClusterKeys.Requests(tenant), ClusterKeys.Tokens(tenant), ClusterKeys.Tenant(tenant), ClusterKeys.Reservations(_replica())]);
}
