using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Limits;
using AotProxy.Threading;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// A tenant's limits fleet-wide (docs/CLUSTER.md): RPM, TPM, max_in_flight and the budgets, each
// checked and charged by one admit script per request on Redis's clock, and given back or
// settled by one fire-and-forget script from the data plane's finally (LimitLease.Settle).
// RPM and TPM are 61 one-second bins, (now - 61, now], like the local SlidingWindow: a request
// decided in second s counts until s + 61, so any 60 s of real time holds at most the limit of
// decisions; a replica sends after its decision, which adds at most one request per replica to a
// window of send times. in_flight and the budgets' reservations are totals in
// `aotproxy:tenant:{tenant}`, each also recorded as this replica's part in `aotproxy:res:{replica}`,
// so that a dead replica's parts are subtracted exactly once by whoever reaps it
// (ClusterMembership), and a settlement subtracts no more than this replica still holds there.
// connection: the replica's one connection (ClusterMembership's), null until it is made;
// replica: its name (set before the connection is); storeDown: [cluster] store_down, what decides
// while the store does not answer (null: the replica's own limits alone, which passed already).
internal sealed class SharedTenantLimits(Func<IConnectionMultiplexer?> connection, Func<string> replica, StoreDownPolicy? storeDown = null)
{
    // KEYS: rpm bins, tpm bins, tenant totals, this replica's parts. ARGV: [1] tenant, [2] rpm,
    // [3] tpm, [4] tokens for tpm, [5] max_in_flight, [6..9] budget_tokens, monthly_budget_tokens,
    // budget_usd and monthly_budget_usd in nanos (0 = not set), [10] tokens and [11] nanos
    // reserved against them, [12] month (yyyymm, kept as "yyyy-MM" like StoreResync's seed, which
    // compares in order as text). 0 means "not limited" throughout. The checks run
    // in the local stage's order (in flight, budgets, RPM, TPM) and nothing is written until all
    // passed. Returns the second it was taken in (one number, no array to build and parse), or
    // {0, refusal (LimitRefusal), wait in seconds, budget kind (BudgetKind), what that budget had
    // left}. Lua numbers are doubles: budgets compare exactly
    // up to 2^53 (9e15 tokens or nano-USD, $9M); the counters themselves are Redis integers.
    private const string AdmitScript = """
        local now = tonumber(redis.call('TIME')[1])
        local function num(v) return tonumber(v) or 0 end
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
          if total + n <= limit then return 0 end
          -- Refused: only now the bins in order, for the wait (no table per bin on the common path).
          local counted = {}
          for i = 1, #bins, 2 do
            local second, count = tonumber(bins[i]), tonumber(bins[i + 1])
            if second > now - 61 and count > 0 then counted[#counted + 1] = {second, count} end
          end
          table.sort(counted, function(a, b) return a[1] < b[1] end)
          for _, bin in ipairs(counted) do
            total = total - bin[2]
            if total + n <= limit then return math.max(bin[1] + 61 - now, 1) end
          end
          return 61
        end
        local t = KEYS[3]
        local place = 't|' .. ARGV[1] .. '|'
        local rpm, tpm, tokens, maxInFlight = num(ARGV[2]), num(ARGV[3]), num(ARGV[4]), num(ARGV[5])
        local limits = {num(ARGV[6]), num(ARGV[7]), num(ARGV[8]), num(ARGV[9])}
        local rt, rn = num(ARGV[10]), num(ARGV[11])
        local month = string.format('%04d-%02d', math.floor(num(ARGV[12]) / 100), num(ARGV[12]) % 100)
        local budget = limits[1] > 0 or limits[2] > 0 or limits[3] > 0 or limits[4] > 0
        if maxInFlight > 0 and num(redis.call('HGET', t, 'in_flight')) >= maxInFlight then
          return {0, 3, 1, 0, 0}
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
        if rpm > 0 then
          local wait = window(KEYS[1], 1, rpm)
          if wait > 0 then return {0, 1, wait, 0, 0} end
        end
        if tpm > 0 then
          local wait = window(KEYS[2], tokens, tpm)
          if wait > 0 then return {0, 2, wait, 0, 0} end
        end
        if maxInFlight > 0 then
          redis.call('HINCRBY', t, 'in_flight', 1)
          redis.call('HINCRBY', KEYS[4], place .. 'in_flight', 1)
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
        if rpm > 0 then
          redis.call('HINCRBY', KEYS[1], now, 1)
          redis.call('PEXPIRE', KEYS[1], 62000)
        end
        if tpm > 0 and tokens > 0 then
          redis.call('HINCRBY', KEYS[2], now, tokens)
          redis.call('PEXPIRE', KEYS[2], 62000)
        end
        return now
        """;

    // KEYS as AdmitScript. ARGV: [1] tenant, [2] the second it was admitted in, [3] 1 to give
    // its minute's place back, [4] tokens to move into its token bin (negative: a refund),
    // [5] in flight to release, [6] tokens and [7] nanos reserved to release, [8] tokens and
    // [9] nanos spent, [10] month (yyyymm, kept as "yyyy-MM"). A bin that left the window (or a
    // store restarted empty) has nothing to give back; a part this replica no longer holds
    // (reaped) is not subtracted again.
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
        local second = ARGV[2]
        if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[1], second) == 1 then
          redis.call('HINCRBY', KEYS[1], second, -1)
        end
        local moved = tonumber(ARGV[4])
        if moved ~= 0 and redis.call('HEXISTS', KEYS[2], second) == 1 then
          redis.call('HINCRBY', KEYS[2], second, moved)
        end
        release('in_flight', tonumber(ARGV[5]))
        release('budget_reserved', tonumber(ARGV[6]))
        release('usd_reserved_nanos', tonumber(ARGV[7]))
        local tokens, nanos = tonumber(ARGV[8]), tonumber(ARGV[9])
        if tokens > 0 or nanos > 0 then
          local m = tonumber(ARGV[10])
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

    public StoreDownPolicy? StoreDown => storeDown;

    private static readonly ClusterScript Admit = new(AdmitScript);

    private const int AdmitArgs = 12;

    // The admit's argument arrays, reused once answered: about as many as admits wait at once.
    private const int MaxPooledArgs = 256;

    // Each tenant's four keys, built once: StackExchange.Redis only reads the array.
    private readonly ConcurrentDictionary<string, RedisKey[]> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<RedisValue[]> _admitArgs = new();

    // StoreDown when the store cannot answer (not connected yet, down, timed out): the caller
    // decides with its own limits alone. The one place that says so.
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<SharedTake> TryAdmitAsync(SharedDemand demand)
    {
        // Gated: the connection failed and the resync has not found the epoch settled yet.
        if (connection() is not { IsConnected: true } redis || storeDown is { Gated: true })
        {
            return SharedTake.StoreDown;
        }

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
        try
        {
            var result = await Admit.EvaluateAsync(redis.GetDatabase(), KeysOf(demand.Tenant), args).ConfigureAwait(false);

            // Answered: the client has written the arguments and holds them no longer, so the
            // next admit may fill them (an admit that failed may still be queued: not reused).
            if (_admitArgs.Count < MaxPooledArgs)
            {
                _admitArgs.Enqueue(args);
            }

            if (result.Length < 0)
            {
                storeDown?.Held.Take(demand); // what the resync re-seeds after an empty restart
                return new SharedTake(SharedTakeOutcome.Taken, (long)result, TimeSpan.Zero);
            }

            return new SharedTake(SharedTakeOutcome.Refused, 0, TimeSpan.FromSeconds((long)result[2]), (LimitRefusal)(long)result[1], (BudgetKind)(long)result[3], (long)result[4]);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return SharedTake.StoreDown;
        }
    }

    // admitted = false: the request never went upstream, its place in the minute and its whole
    // token reservation go back. Otherwise the token bin moves to the usage (none known: the
    // reservation stays, as the local TPM lease does) and the budgets charge it (none known:
    // nothing, as TenantBudgetState.Settle). in flight and the budget reservations are released
    // either way. Not sent if the store is unreachable: bins leave the window within 61 s, the
    // spend goes into the outage's record and the parts are reconciled by the resync
    // (StoreDownPolicy, StoreResync). A request store_down admitted alone settles into the
    // outage's record instead.
    public void Settle(in SharedPlace place, bool admitted, Usage? usage, ModelPrice price)
    {
        if (place.Alone)
        {
            storeDown?.Settle(place.Demand, admitted ? usage : null, price);
            return;
        }

        // Before the script is sent: a resync's reconcile never counts a part its release follows.
        storeDown?.Held.Release(place.Demand);
        if (connection() is not { IsConnected: true } redis)
        {
            // Dropped: the resync reconciles the parts; the spend waits in the outage's record.
            storeDown?.Settle(place.Demand, admitted ? usage : null, price);
            return;
        }

        var demand = place.Demand;
        var budgeted = demand.Budget is not null;
        var used = admitted ? usage : null;
        var moved = demand.Tpm <= 0 ? 0 : !admitted ? -demand.Tokens : used is { } u ? u.TotalTokens - demand.Tokens : 0;
        RedisValue[] args =
        [
            demand.Tenant, place.Second, !admitted && demand.Rpm > 0 ? 1 : 0, moved, demand.MaxInFlight > 0 ? 1 : 0,
            budgeted ? demand.BudgetTokens : 0, budgeted ? demand.BudgetNanos : 0,
            budgeted && used is { } spent ? spent.TotalTokens : 0, budgeted && used is { } cost ? price.CostNanos(cost) : 0, demand.Month,
        ];
        _ = redis.GetDatabase().ScriptEvaluateAsync(SettleScript, KeysOf(demand.Tenant), args, CommandFlags.FireAndForget);
    }

    private RedisKey[] KeysOf(string tenant) =>
        _keys.TryGetValue(tenant, out var keys) ? keys
        : _keys.GetOrAdd(tenant, [ClusterKeys.Requests(tenant), ClusterKeys.Tokens(tenant), ClusterKeys.Tenant(tenant), ClusterKeys.Reservations(replica())]);
}
