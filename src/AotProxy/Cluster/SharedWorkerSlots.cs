using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Threading;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// Each worker's max_concurrency fleet-wide (docs/CLUSTER.md, "max_in_flight and each worker's
// max_concurrency"): a request about to go to a worker first takes one of its slots in Redis, one
// script on `aotproxy:worker:{w}` running and this replica's part in `aotproxy:res:{replica}`, so
// the requests on a worker summed over all replicas never exceed max_concurrency. Far from full,
// a grant is a block of slots leased to this replica (SlotLease), which its next requests take
// here with no Redis call; releases keep them, and each heartbeat trims the lease to the peak use
// since the previous one (all unused when idle). A refusal keeps the request on its worker slot
// here (it is first in line on this replica) until a release on any replica wakes it
// (`aotproxy:release:{w}`, or the heartbeat's read of running if that message was lost: at most
// one heartbeat of extra wait); it also tells the holders (a "want" on the same channel), who each
// owe it one slot, from their unused lease at once or from their next release, until it is
// granted ("served" on the channel). The release is fire-and-forget. A store that does not answer
// leaves each replica max_concurrency / N (LocalShare) of the worker, and no lease is used then.
// A worker's drain is shared too: `drain` on one replica writes `drained` in the worker's hash and
// publishes it on `aotproxy:events`; every replica applies the message at once and reads every
// worker's `drained` again each heartbeat, so a lost message costs at most one heartbeat.
// So is a breaker that opens: its open-until time (Redis's clock + open_timeout) goes into the
// worker's hash and out on `aotproxy:events`, and the other replicas open theirs until then
// (their half-open trials after it are their own).
// connection: the replica's one connection (ClusterMembership's), null until it is made.
internal sealed class SharedWorkerSlots : IAsyncDisposable
{
    // KEYS[1] the worker's hash, KEYS[2] this replica's reservations, KEYS[3] the worker's
    // preempting wants; ARGV[1] max_concurrency,
    // ARGV[2] the reservation field, ARGV[3] how long a replica that learns the worker is full
    // waits at most before it reads running again (ms: 3 heartbeats), ARGV[4] the slots wanted,
    // ARGV[5] the live members, ARGV[6] the worker's release channel, ARGV[7] how long a refusal's
    // want lasts (ms: one heartbeat), ARGV[8] the request's priority, ARGV[9] its want's member
    // ('' when it may preempt nobody), ARGV[10] the claims' key prefix, ARGV[11] the names of the
    // want's pool ('\n' before each; '' for the worker alone), KEYS[4..] the pool's other workers'
    // wants (PoolWant). One number back (no array to build and parse: 153 B per
    // grant, SharedDecisionBenchmarks.GrantAndRelease): granted, slots x (max + 1) + running after
    // (running <= max then); refused, -(running + 1). A block is at most half of the free slots'
    // fair share per member (with 100 free over 3 members, 16), and never more than the free slots:
    // the leases summed over replicas stay within max_concurrency, and a replica that comes later
    // finds room.
    // An answer that says the worker is full (a refusal, or the grant that filled it) sets
    // wait_until: until then a replica may be waiting for a slot of it, and a release publishes.
    // A refusal also writes this replica's want (the field `want:` + KEYS[2], until one heartbeat
    // from now: the waiter asks again within one, and its next refusal writes it again) and
    // publishes KEYS[2] on the release channel: each other holder owes it one slot. Only a
    // refusal, as a worker filled by leases (the grant that filled it, a heartbeat's read) waits
    // for nobody yet, and its holders keep their blocks. The grant that serves a want deletes it,
    // and when no other replica's want is live, publishes "served" (-2): the holders' debts end.
    // (Before, a refusal made every replica give each release back at once for a heartbeat, and the
    // next refusal renewed it: 0.4-1.2 scripts per request in perf/cluster.sh case 5,
    // perf/RESULTS.md "Issue 16: worker-slot leases without churn".)
    // Preemption across replicas (docs/design/admission20-queue.md): a refused request that may
    // preempt (ARGV[9]) writes its want in KEYS[3], scored priority x 2^42 + until (Redis's clock,
    // one heartbeat on), and publishes `p|priority|member`: a holder with a less important request
    // on the worker that has sent nothing claims it (ClaimScript) and preempts it, whose slot comes
    // back here. The free slots a grant may take are those left after one for each live want more
    // important than its request, and for each claimed want of its own priority (a victim's slot
    // is on its way to it; among claimed wants the lower member goes first, so two never wait
    // for each other): so the slot a preemption freed goes to the want it was freed for, never to
    // another request, of any replica. An unclaimed want of its own priority holds nothing back.
    // The grant that serves a want deletes it.
    // A want names the pool (PoolWant): written in every pool worker's wants (KEYS[3..]), its `p|`
    // message lists them, so a holder preempts a victim on any of them, and every one holds a freed
    // slot back for it. The grant that serves it, on whichever worker, deletes it from all, and
    // publishes `u` with the names: a slot another worker held back for it is anyone's now.
    private const string GrantScript = """
        local running = tonumber(redis.call('HGET', KEYS[1], 'running') or '0')
        local max = tonumber(ARGV[1])
        local wantField = 'want:' .. KEYS[2]
        local span = 4398046511104
        local function now()
          local time = redis.call('TIME')
          return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        end
        local function waited(at)
          local deadline = at + tonumber(ARGV[3])
          if deadline > tonumber(redis.call('HGET', KEYS[1], 'wait_until') or '0') then
            redis.call('HSET', KEYS[1], 'wait_until', deadline)
          end
        end
        local priority = tonumber(ARGV[8])
        local ahead = 0
        if redis.call('ZCARD', KEYS[3]) > 0 then
          local at = now()
          local wants = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('(%.0f', (priority + 1) * span), 'WITHSCORES')
          for i = 1, #wants, 2 do
            local score = tonumber(wants[i + 1])
            if score % span <= at then
              redis.call('ZREM', KEYS[3], wants[i])
            elseif score < priority * span then
              ahead = ahead + 1
            elseif wants[i] ~= ARGV[9] and (ARGV[9] == '' or wants[i] < ARGV[9]) and redis.call('EXISTS', ARGV[10] .. wants[i]) == 1 then
              ahead = ahead + 1
            end
          end
        end
        if running + ahead >= max then
          local at = now()
          waited(at)
          redis.call('HSET', KEYS[1], wantField, at + tonumber(ARGV[7]))
          redis.call('PUBLISH', ARGV[6], KEYS[2])
          if ARGV[9] ~= '' then
            for k = 3, #KEYS do
              redis.call('ZADD', KEYS[k], 'GT', priority * span + at + tonumber(ARGV[7]), ARGV[9])
            end
            redis.call('PUBLISH', ARGV[6], 'p|' .. ARGV[8] .. '|' .. ARGV[9] .. ARGV[11])
          end
          return -(math.min(running + ahead, max) + 1)
        end
        local slots = math.min(tonumber(ARGV[4]), math.max(1, math.floor((max - running - ahead) / (2 * tonumber(ARGV[5])))))
        redis.call('HINCRBY', KEYS[2], ARGV[2], slots)
        running = redis.call('HINCRBY', KEYS[1], 'running', slots)
        if running >= max then waited(now()) end
        if ARGV[9] ~= '' then
          redis.call('ZREM', KEYS[3], ARGV[9])
          local held = false
          for k = 4, #KEYS do
            if redis.call('ZREM', KEYS[k], ARGV[9]) == 1 then held = true end
          end
          if held then redis.call('PUBLISH', ARGV[6], 'u' .. ARGV[11]) end
        end
        if redis.call('HDEL', KEYS[1], wantField) == 1 then
          local at = now()
          local fields = redis.call('HGETALL', KEYS[1])
          local live = false
          for i = 1, #fields, 2 do
            if string.sub(fields[i], 1, 5) == 'want:' then
              if tonumber(fields[i + 1]) > at then
                live = true
              else
                redis.call('HDEL', KEYS[1], fields[i])
              end
            end
          end
          if not live then redis.call('PUBLISH', ARGV[6], -2) end
        end
        return slots * (max + 1) + running
        """;

    // A holder's claim on a want to preempt for: KEYS[1] the worker's wants, KEYS[2] the want's
    // claim; ARGV[1] the want's member, ARGV[2] this replica, ARGV[3] the victim's priority,
    // ARGV[4] how long the claim lasts (ms), ARGV[5] how long the claimed want lives on (ms: 3
    // heartbeats, for the victim's slot to come back, whatever the waiter's own heartbeat; its
    // refusals meanwhile do not shorten it, ZADD GT). 1 when this replica may preempt for it: the
    // want is live, more important than the victim, and nobody claimed it before (one preemption
    // per waiting request, whichever holder asks first); 0 otherwise.
    private const string ClaimScript = """
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not score then return 0 end
        score = tonumber(score)
        local span = 4398046511104
        local time = redis.call('TIME')
        if score % span <= tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) then
          redis.call('ZREM', KEYS[1], ARGV[1])
          return 0
        end
        local priority = math.floor(score / span)
        if priority >= tonumber(ARGV[3]) then return 0 end
        if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[4]) then return 0 end
        redis.call('ZADD', KEYS[1], 'GT', priority * span + tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[5]), ARGV[1])
        return 1
        """;

    // The same keys; ARGV[1] the reservation field, ARGV[2] the release channel, ARGV[3] the slots
    // given back. Only slots Redis still counts are given back: after a reap or an empty restart
    // this replica's part is gone, and running must not go below what the live replicas hold. Published only while a
    // replica may wait for the worker (wait_until, GrantScript): a replica learns the worker is
    // full only from an answer that sets it, and reads running again within one heartbeat (which
    // sets it again while the worker is full), so every replica that waits is told; a release
    // nobody waits for costs no message on every replica (perf/RESULTS.md, "Issue 16: the hot path").
    private const string ReleaseScript = """
        local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
        if mine <= 0 then
          return -1
        end
        local back = math.min(mine, tonumber(ARGV[3]))
        if mine == back then
          redis.call('HDEL', KEYS[2], ARGV[1])
        else
          redis.call('HINCRBY', KEYS[2], ARGV[1], -back)
        end
        local running = redis.call('HINCRBY', KEYS[1], 'running', -back)
        if running < 0 then
          redis.call('HSET', KEYS[1], 'running', 0)
          running = 0
        end
        local waitUntil = tonumber(redis.call('HGET', KEYS[1], 'wait_until') or '0')
        if waitUntil > 0 then
          local time = redis.call('TIME')
          if tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) < waitUntil then
            redis.call('PUBLISH', ARGV[2], running)
          end
        end
        return running
        """;

    // KEYS[1] the worker's hash; ARGV[1] open_timeout in ms, ARGV[2] the events channel, ARGV[3]
    // the message. The later of two open-until times stands.
    private const string BreakerScript = """
        local time = redis.call('TIME')
        local openUntil = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[1])
        if openUntil > tonumber(redis.call('HGET', KEYS[1], 'breaker_until') or '0') then
          redis.call('HSET', KEYS[1], 'breaker_until', openUntil)
        end
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return openUntil
        """;

    // KEYS: workers' hashes; ARGV[1] as GrantScript's ARGV[3], ARGV[2] this replica's want field
    // (GrantScript's), ARGV[2 + i] the max_concurrency of KEYS[i]. For each: running, drained, ms
    // until its breaker's open-until (0 past), ms until the latest live want of another replica (0:
    // none; wants past their time are deleted). A worker read full sets wait_until as a grant that
    // finds it full does.
    private const string ReadScript = """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local out = {}
        for i, key in ipairs(KEYS) do
          local fields = redis.call('HGETALL', key)
          local values = {}
          local wanted = 0
          for j = 1, #fields, 2 do
            local name = fields[j]
            if string.sub(name, 1, 5) == 'want:' then
              local left = tonumber(fields[j + 1]) - now
              if left <= 0 then
                redis.call('HDEL', key, name)
              elseif name ~= ARGV[2] and left > wanted then
                wanted = left
              end
            else
              values[name] = fields[j + 1]
            end
          end
          local left = tonumber(values['breaker_until'] or '0') - now
          local running = tonumber(values['running'] or '0')
          if running >= tonumber(ARGV[2 + i]) and now + tonumber(ARGV[1]) > tonumber(values['wait_until'] or '0') then
            redis.call('HSET', key, 'wait_until', now + tonumber(ARGV[1]))
          end
          out[#out + 1] = running
          out[#out + 1] = tonumber(values['drained'] or '0')
          out[#out + 1] = left > 0 and left or 0
          out[#out + 1] = wanted
        end
        return out
        """;

    private static readonly ClusterScript Grant = new(GrantScript);
    private static readonly ClusterScript Claim = new(ClaimScript);

    // How long a claim on a want stands: beyond a waiting request's max_queue_wait (30 s by
    // default), so a want its waiter writes again is not preempted for twice.
    private const long ClaimMs = 120_000;
    private static readonly RedisValue DrainedField = "drained";
    private const string DrainEvent = "drain:";
    private const string UndrainEvent = "undrain:";
    private const string BreakerEvent = "breaker:";

    // On a worker's release channel, where a release publishes running (>= 0) and a refusal the
    // refused replica's reservations key (its want): the wants are all granted.
    private const long ServedMessage = -2;

    private readonly ConcurrentDictionary<string, SharedWorker> _workers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<RedisChannel, SharedWorker> _byChannel = new();
    private readonly Func<IConnectionMultiplexer?> _connection;
    private readonly Func<string> _replica;
    private readonly Func<int> _members;
    private readonly Func<WorkerState[]> _workersNow;
    private readonly Func<CircuitBreakerModel> _breaker;
    private readonly TimeSpan _heartbeat;

    // How long after an answer that said the worker is full a release still publishes (ms): 3
    // heartbeats, the replica reading running again every one (ReadScript, which sets it again).
    private readonly long _waitMs;

    // How long a refusal's want lasts (ms): one heartbeat (GrantScript's ARGV[7]).
    private readonly long _wantMs;
    private readonly CapacitySignal? _capacity;
    private readonly TimeProvider _time;
    private readonly BackgroundLoop _loops = new();
    private volatile string? _named;

    // This replica's want on the release channels (its reservations key), which it does not owe itself.
    private byte[] _ownWant = [];

    // The wants that may preempt, numbered per process (`{replica}|{process}|{n}`: a restarted
    // replica's wants are not taken for those its claims of the last 120 s name).
    private long _wants;
    private string _wantPrefix = string.Empty;

    // Its want's field in a worker's hash (GrantScript), for the heartbeat's read to leave out.
    private RedisValue _wantField;
    private IConnectionMultiplexer? _subscribed;

    // replica: this replica's name (set once membership starts); members: live members at the last
    // good heartbeat; workers: the workers requests run on now (whose drains and breakers are
    // applied), breaker: the config's [circuit_breaker]; capacity: told when slots came free
    // elsewhere, so admission's waiters take them.
    public SharedWorkerSlots(Func<IConnectionMultiplexer?> connection, Func<string> replica, Func<int> members, Func<WorkerState[]> workers, Func<CircuitBreakerModel> breaker, TimeSpan heartbeat, TimeProvider time, CapacitySignal? capacity = null)
    {
        _breaker = breaker;
        _connection = connection;
        _replica = replica;
        _members = members;
        _workersNow = workers;
        _heartbeat = heartbeat;
        _waitMs = (long)(3 * heartbeat.TotalMilliseconds);
        _wantMs = (long)heartbeat.TotalMilliseconds;
        _time = time;
        _capacity = capacity;
    }

    // Every worker's fleet-wide state this replica has used: the grants it holds, which the
    // resync re-seeds after an empty restart (HeldParts).
    public IEnumerable<SharedWorker> Workers => _workers.Values;

    // Where a want that may preempt finds its victims here (GatewayHost sets it; none: this
    // replica preempts for nobody else).
    public AdmissionController? Victims { get; set; }

    // The worker's fleet-wide state, attached to its WorkerState on first use.
    public SharedWorker For(WorkerState worker)
    {
        if (worker.Shared is { } known)
        {
            return known;
        }

        var shared = _workers.GetOrAdd(worker.Name, static (name, self) => new SharedWorker(self, name), this);
        worker.Shared = shared;
        return shared;
    }

    // A slot on `worker` fleet-wide for the request that holds one of its local slots: Shared once
    // Redis granted one, LocalShare when the store does not answer and this replica's share has
    // room, None when maxWait passed first (the request gives its slot back and no worker took
    // it), with the time it waited for one (SlotAcquisition). Throws OperationCanceledException when
    // the client goes away, or when `preempted` is cancelled (its request was preempted while it
    // waited here: it gives its place up at once). want: its priority, and whether its refusal
    // writes a want that may preempt (one member for the whole wait: one preemption at most).
    public ValueTask<SlotAcquisition> AcquireAsync(WorkerState worker, TimeSpan maxWait, CancellationToken cancellationToken) =>
        AcquireAsync(worker, maxWait, default, default, cancellationToken);

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<SlotAcquisition> AcquireAsync(WorkerState worker, TimeSpan maxWait, FleetWant want, CancellationToken preempted, CancellationToken cancellationToken)
    {
        var shared = For(worker);
        var started = _time.GetTimestamp();
        var waitedFrom = 0L;
        PoolWant? pool = null; // its want that may preempt, on the pool: made at its first ask
        CancellationTokenSource? linked = null; // made only when a preemptible request waits
        try
        {
            while (true)
            {
                preempted.ThrowIfCancellationRequested();
                var seen = shared.Releases;
                pool?.See();
                if (Store is not null && shared.Lease.TryUse())
                {
                    return Answer(SlotGrant.Shared, waitedFrom);
                }

                // A want on the pool takes whichever of its workers' slots came free first.
                if (pool is not null && Store is not null && await TryElsewhereAsync(pool, want.Priority).ConfigureAwait(false) is { } moved)
                {
                    return Answer(SlotGrant.Shared, waitedFrom, moved);
                }

                var max = worker.Model.MaxConcurrency;
                var left = Left(maxWait, started);

                // A block asked for here at this moment is as large as what is used, so it most likely
                // covers this request too: it waits for it and takes from it, instead of asking for one
                // slot beside it, which the block may leave no room for (a refusal, whose "want" turns
                // every replica to one grant per request while wanted: perf/cluster.sh case 5).
                // Not while this lease owes a slot elsewhere: then each request asks for its own slot.
                if (left <= TimeSpan.Zero || !shared.BlockGrantInFlight || shared.Lease.IsWanted(Now))
                {
                    pool ??= want.MayPreempt && _named is not null ? NewWant(worker, shared, want.Pool) : null;
                    switch (await TryGrantAsync(shared, max, want.Priority, pool?.Member, pool).ConfigureAwait(false))
                    {
                        case SharedTakeOutcome.Taken:
                            pool?.OnServed(); // the grant deleted its want
                            return Answer(SlotGrant.Shared, waitedFrom);
                        case SharedTakeOutcome.StoreDown when shared.TryTakeLocalShare(LocalShare.Of(max, _members())):
                            return Answer(SlotGrant.LocalShare, waitedFrom);
                    }

                    left = Left(maxWait, started);
                    if (left <= TimeSpan.Zero)
                    {
                        return Answer(SlotGrant.None, waitedFrom);
                    }
                }

                if (waitedFrom == 0)
                {
                    waitedFrom = _time.GetTimestamp();
                }

                // A release (or the block's answer) wakes it, on any worker of its want's pool; without
                // one (a lost message, a store that is down) it asks again after a heartbeat.
                if (preempted.CanBeCanceled)
                {
                    linked ??= CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, preempted);
                }

                try
                {
                    var release = shared.NextRelease(seen);
                    await (pool?.NextRelease(release) ?? release).WaitAsync(left < _heartbeat ? left : _heartbeat, _time, linked?.Token ?? cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                }
            }
        }
        finally
        {
            linked?.Dispose();
            if (pool is { IsServed: false })
            {
                ForgetWant(pool); // it left without its grant: its want holds no slot back
            }
        }
    }

    // The want of a request that may preempt, on `worker` and the pool's other workers that take
    // requests now (the pool's; none: the worker alone).
    private PoolWant NewWant(WorkerState worker, SharedWorker shared, WorkerState[]? workers)
    {
        var member = _wantPrefix + Interlocked.Increment(ref _wants).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var breaker = _breaker();
        var others = workers is null ? [] : Array.FindAll(workers, w => !ReferenceEquals(w, worker) && w.IsRoutable(breaker));
        return new PoolWant(member, shared, others, Array.ConvertAll(others, For));
    }

    // A want on the pool: a slot of another of its workers, unused in this replica's lease, or
    // granted where the last read saw one free (the grant serves the want and deletes it
    // everywhere). The worker, or null.
    private async ValueTask<WorkerState?> TryElsewhereAsync(PoolWant pool, int priority)
    {
        for (var i = 0; i < pool.Others.Length; i++)
        {
            var other = pool.OthersShared[i];
            if (other.Lease.TryUse())
            {
                return pool.Others[i];
            }

            if (other.HasFree && await TryGrantAsync(other, pool.Others[i].Model.MaxConcurrency, priority, pool.Member, pool).ConfigureAwait(false) == SharedTakeOutcome.Taken)
            {
                pool.OnServed();
                return pool.Others[i];
            }
        }

        return null;
    }

    // Fire-and-forget, as a release: lost with the store, the want ends with its time.
    private void ForgetWant(PoolWant pool)
    {
        if (_connection() is { IsConnected: true } redis)
        {
            var db = redis.GetDatabase();
            foreach (var wants in pool.AllWants)
            {
                _ = db.SortedSetRemoveAsync(wants, pool.Member, CommandFlags.FireAndForget);
            }
        }
    }

    private SlotAcquisition Answer(SlotGrant grant, long waitedFrom, WorkerState? movedTo = null) =>
        new(grant, waitedFrom == 0 ? TimeSpan.Zero : _time.GetElapsedTime(waitedFrom), movedTo);

    // What is left of maxWait, at most a heartbeat when there is no end.
    private TimeSpan Left(TimeSpan maxWait, long started) =>
        maxWait == Timeout.InfiniteTimeSpan ? _heartbeat : maxWait - _time.GetElapsedTime(started);

    // One round trip: the grant script on the worker's running count, for a block (SlotLease.Want)
    // or, while another block is asked for here, for one slot. priority: the request's; member: its
    // want that may preempt (null: none).
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    // pool: the want's pool, when it names one (its keys and names; member is its member).
    public async ValueTask<SharedTakeOutcome> TryGrantAsync(SharedWorker shared, int max, int priority = 0, string? member = null, PoolWant? pool = null)
    {
        // Not started: a request that came in before the replica was named decides alone.
        if (Store is not { } redis)
        {
            shared.OnStoreDown();
            return SharedTakeOutcome.StoreDown;
        }

        var block = shared.TryStartBlockGrant();
        var outcome = SharedTakeOutcome.StoreDown;
        try
        {
            var want = block ? shared.Lease.Want(max, Now) : 1;
            var answer = (long)(await Grant.EvaluateAsync(redis.GetDatabase(), pool?.KeysFor(shared) ?? shared.Keys, shared.GrantArgs(max, _waitMs, _wantMs, want, _members(), priority, member, pool?.Names ?? default)).ConfigureAwait(false));
            if (answer > 0)
            {
                shared.OnGranted((int)(answer / (max + 1L)), answer % (max + 1L), max);
                return outcome = SharedTakeOutcome.Taken;
            }

            shared.OnRefused(-answer - 1, max);
            return outcome = SharedTakeOutcome.Refused;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            shared.OnStoreDown();
            return SharedTakeOutcome.StoreDown;
        }
        finally
        {
            if (block)
            {
                shared.EndBlockGrant(refused: outcome == SharedTakeOutcome.Refused);
            }
        }
    }

    // `slots` of the worker back to the fleet. Fire-and-forget; lost if the store is unreachable,
    // and then they stay counted until the resync sets this replica's part to what it uses, or it
    // is reaped: never fewer free slots than real.
    public void Release(SharedWorker shared, int slots)
    {
        if (_connection() is { IsConnected: true } redis)
        {
            _ = redis.GetDatabase().ScriptEvaluateAsync(ReleaseScript, shared.Keys, shared.ReleaseArgs(slots), CommandFlags.FireAndForget);
        }
    }

    // The gateway's clock, for how long a slot is owed elsewhere (SlotLease).
    internal long Now => _time.GetTimestamp();

    // The gateway's clock `ms` from now.
    private long After(long ms) => _time.GetTimestamp() + (ms * _time.TimestampFrequency / 1000);

    // The connection while the store answers and the replica is named; null otherwise.
    private IConnectionMultiplexer? Store => _named is not null && _connection() is { IsConnected: true } redis ? redis : null;

    // POST /api/workers/{name}/drain|undrain on this replica, after it applied it here: the same on
    // every replica. False when the store did not take it (then this replica alone is drained, and
    // the heartbeats that find the store back apply what it holds).
    public async Task<bool> ShareDrainAsync(string worker, bool drain)
    {
        if (_connection() is not { IsConnected: true } redis)
        {
            return false;
        }

        try
        {
            var db = redis.GetDatabase();
            await db.HashSetAsync(ClusterKeys.Worker(worker), DrainedField, drain ? 1 : 0).ConfigureAwait(false);
            await db.PublishAsync(ClusterKeys.Events, (drain ? DrainEvent : UndrainEvent) + worker).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return false;
        }
    }

    // This replica's breaker on `worker` just opened: the others open theirs until the same time.
    // Fire-and-forget: lost with the store, and then each replica's breaker opens on what it saw.
    public void ShareBreakerOpen(string worker, TimeSpan openTimeout)
    {
        if (_connection() is { IsConnected: true } redis)
        {
            _ = redis.GetDatabase().ScriptEvaluateAsync(
                BreakerScript, [ClusterKeys.Worker(worker)], [(long)openTimeout.TotalMilliseconds, (RedisValue)ClusterKeys.EventsName, BreakerEvent + worker], CommandFlags.FireAndForget);
        }
    }

    // After membership has started (the replica is named): the release messages and, every
    // heartbeat, each known worker's running count read again.
    public void Start()
    {
        _wantPrefix = _replica() + "|" + Random.Shared.Next().ToString("x", System.Globalization.CultureInfo.InvariantCulture) + "|";
        _named = _replica();
        var reservations = ReservationsKey.ToString();
        _ownWant = System.Text.Encoding.UTF8.GetBytes(reservations);
        _wantField = "want:" + reservations;
        _loops.Start(RunAsync);
    }

    // This replica's reservations; only asked for once Start has named the replica (TryGrantAsync
    // checks), and once per worker (SharedWorker.Keys keeps it).
    internal RedisKey ReservationsKey => ClusterKeys.Reservations(_named ?? throw new InvalidOperationException("SharedWorkerSlots has not started."));

    private async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_heartbeat, _time);
        do
        {
            await ReconcileAsync().ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false));
    }

    private async Task ReconcileAsync()
    {
        if (_connection() is not { IsConnected: true } redis)
        {
            return;
        }

        try
        {
            if (!ReferenceEquals(_subscribed, redis))
            {
                // The client subscribes again by itself after a reconnect.
                await redis.GetSubscriber().SubscribeAsync(ClusterKeys.Releases, OnReleased).ConfigureAwait(false);
                await redis.GetSubscriber().SubscribeAsync(ClusterKeys.Events, OnEvent).ConfigureAwait(false);
                _subscribed = redis;
            }

            var workers = _workersNow();
            var freed = await ReadAsync(redis, workers).ConfigureAwait(false);
            if (freed)
            {
                _capacity?.Changed();
            }

            GiveBackIdleLeases(workers);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The grants find the store down themselves; the next heartbeat reads again.
        }
    }

    // The unused lease of a worker that took no slot since the last heartbeat, or that takes no
    // requests here now (drained, breaker open), goes back to the store.
    private void GiveBackIdleLeases(WorkerState[] workers)
    {
        foreach (var shared in _workers.Values)
        {
            shared.OnHeartbeat();
        }

        var breaker = _breaker();
        foreach (var worker in workers)
        {
            if (worker.Shared is { } shared && (worker.Draining || !worker.Breaker.AllowsTraffic(breaker)))
            {
                shared.GiveBackUnused();
            }
        }
    }

    // A release message: the worker found by its channel (the name cut out of the channel once per
    // worker), the running count parsed from the message's bytes, no string made for either. A
    // want that may preempt, or one served elsewhere, names its pool's workers: this replica may
    // hold a victim or a held slot on any of them, whichever channel it came on.
    private void OnReleased(RedisChannel channel, RedisValue message)
    {
        var text = ((ReadOnlyMemory<byte>)message).Span;
        if (text.StartsWith("p|"u8))
        {
            _ = PreemptForAsync(channel, message);
            return;
        }

        if (text.StartsWith("u"u8))
        {
            Unheld(message);
            return;
        }

        if (!_byChannel.TryGetValue(channel, out var worker))
        {
            var name = ((string?)channel ?? string.Empty)[ClusterKeys.ReleasePrefix.Length..];
            if (!_workers.TryGetValue(name, out worker))
            {
                return;
            }

            _byChannel.TryAdd(channel, worker);
        }

        if (!message.TryParse(out long running))
        {
            if (!text.SequenceEqual(_ownWant))
            {
                worker.OnWanted(After(_wantMs));
            }
        }
        else if (running == ServedMessage)
        {
            worker.OnServed();
        }
        else if (running >= 0 && worker.OnRunning(running, worker.LastMax))
        {
            _capacity?.Changed();
        }
    }

    // `u` and the names of a served want's pool (GrantScript): the slots the other workers held back
    // for it are anyone's now. What this replica read of them (none free, as its refusals said) no
    // longer holds: its waiters there ask again.
    private void Unheld(RedisValue message)
    {
        foreach (var name in ((string?)message ?? string.Empty).Split('\n', StringSplitOptions.RemoveEmptyEntries).AsSpan(1))
        {
            if (_workers.TryGetValue(name, out var worker))
            {
                worker.OnUnheld();
            }
        }

        _capacity?.Changed();
    }

    // A want that may preempt (`p|priority|member`, then the names of its pool's workers, GrantScript;
    // none: the channel's worker): a request here on one of them, of a less important class, that
    // holds its slot fleet-wide and has sent nothing yet is preempted for it, once this replica's
    // claim on the want stands (ClaimScript: the first holder to claim it preempts, the others do
    // not). Its slot then goes back to the store, where the grant script keeps it for the want
    // (ModelAdmission.Yield). A victim that started meanwhile gives the claim up, for another
    // holder at the want's next refusal.
    private async Task PreemptForAsync(RedisChannel channel, RedisValue message)
    {
        var lines = ((string?)message ?? string.Empty).Split('\n');
        var parts = lines[0].Split('|', 3);
        var workers = lines.Length > 1 ? lines[1..] : [((string?)channel ?? string.Empty)[ClusterKeys.ReleasePrefix.Length..]];
        if (parts.Length != 3 || !int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var priority)
            || Victims is not { } victims || !victims.TryFindFleetVictim(workers, priority, out var victim)
            || victim.Ticket.FleetWorker is not { } on || Store is not { } redis || _named is not { } named)
        {
            return;
        }

        var member = parts[2];
        try
        {
            var db = redis.GetDatabase();
            if (await TryClaimAsync(db, on, member, named, victim.Ticket.ClassPriority, _waitMs).ConfigureAwait(false) && !victims.PreemptForFleet(victim))
            {
                await db.KeyDeleteAsync(ClusterKeys.Claim(member)).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The want is written again at its next refusal.
        }
    }

    // This replica's claim on the want `member` on `worker`, for a victim of `victimPriority`
    // (ClaimScript): true when it may preempt for it; the want then lives `livesMs` on.
    internal static async Task<bool> TryClaimAsync(IDatabase db, string worker, string member, string replica, int victimPriority, long livesMs) =>
        (long)await Claim.EvaluateAsync(db, [ClusterKeys.PriorityWants(worker), ClusterKeys.Claim(member)], [member, replica, victimPriority, ClaimMs, livesMs]).ConfigureAwait(false) == 1;

    // Each worker's drained and breaker applied, the running count of those this replica asked
    // for read again; one round trip. True when slots came free that were not free before.
    private async Task<bool> ReadAsync(IConnectionMultiplexer redis, WorkerState[] workers)
    {
        if (workers.Length == 0)
        {
            return false;
        }

        var keys = workers.Select(w => ClusterKeys.Worker(w.Name)).ToArray();
        RedisValue[] args = [_waitMs, _wantField, .. workers.Select(w => (RedisValue)w.Model.MaxConcurrency)];
        var values = (long[])(await redis.GetDatabase().ScriptEvaluateAsync(ReadScript, keys, args).ConfigureAwait(false))!;
        var breaker = _breaker();
        var freed = false;
        for (var i = 0; i < workers.Length; i++)
        {
            var worker = workers[i];
            var at = 4 * i;
            if (worker.Draining != (values[at + 1] == 1))
            {
                worker.Draining = values[at + 1] == 1;
            }

            worker.Breaker.OpenFor(TimeSpan.FromMilliseconds(values[at + 2]), breaker);
            if (_workers.TryGetValue(worker.Name, out var shared))
            {
                freed |= shared.OnRunning(values[at], shared.LastMax);
                // Another replica waits for it and its "want" may have been lost: one more slot
                // owed each heartbeat it waits. (A lost "served" ends with the debt's time.)
                if (values[at + 3] > 0)
                {
                    shared.OnWanted(After(values[at + 3]));
                }
            }
        }

        return freed;
    }

    // Another replica's breaker opened on the worker: read its open-until time and apply it.
    private async Task ReadOneAsync(string name)
    {
        try
        {
            if (_connection() is { IsConnected: true } redis && Array.Find(_workersNow(), w => w.Name == name) is { } worker)
            {
                await ReadAsync(redis, [worker]).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The next heartbeat reads it again.
        }
    }

    private void OnEvent(RedisChannel channel, RedisValue message)
    {
        var text = (string?)message ?? string.Empty;
        if (text.StartsWith(BreakerEvent, StringComparison.Ordinal))
        {
            _ = ReadOneAsync(text[BreakerEvent.Length..]);
            return;
        }

        if (text.StartsWith(DrainEvent, StringComparison.Ordinal))
        {
            ApplyDrain(text[DrainEvent.Length..], drained: true);
        }
        else if (text.StartsWith(UndrainEvent, StringComparison.Ordinal))
        {
            ApplyDrain(text[UndrainEvent.Length..], drained: false);
        }
    }

    // Only a change: WorkerState.Draining tells admission what the worker offers now.
    private void ApplyDrain(string name, bool drained)
    {
        foreach (var worker in _workersNow())
        {
            if (worker.Name == name && worker.Draining != drained)
            {
                worker.Draining = drained;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
    }
}
