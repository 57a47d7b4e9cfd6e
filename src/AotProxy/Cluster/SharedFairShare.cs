using System.Collections.Concurrent;
using AotProxy.Admission;
using AotProxy.Threading;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// Fair share fleet-wide (docs/CLUSTER.md, "Fair share"): every `interval` (50 ms), one pipelined
// batch of one script per model sends what this replica charged its tenants since the last flush
// (`aotproxy:vtc:{model}`, tenant -> micro-tokens per weight) and which of them wait here
// (`aotproxy:backlog:{model}`, replica|tenant -> waiting, replica| -> its last flush on Redis's
// clock) and its queue's waiters per level and grant rate (`aotproxy:queue:{model}`, FleetQueues),
// and reads back the fleet's backlogged tenants and their counters, and the other replicas' queues
// (which make a queued request's position and the grant rate fleet-wide estimates). A model with waiters
// is dispatched again with what came back, so a slot left to another replica is taken as soon as
// the data says so. A replica whose flush is older than `stale` (1 s) is dead or cut off: its
// backlog is dropped.
internal sealed class SharedFairShare : IAsyncDisposable
{
    // KEYS[1] vtc, KEYS[2] backlog, KEYS[3] queue; ARGV[1] replica, ARGV[2] ms after which a
    // replica's backlog is dropped, ARGV[3] its queue field (FleetQueues.Format; empty: none), then
    // (tenant, delta, waiting) triples. A tenant that becomes backlogged fleet-wide is lifted to the
    // least counter among the backlogged first (VTC: idle time banks no credit). Returns the number
    // of the other live replicas' queue fields and those fields, each sent tenant's counter, then
    // name, counter of every backlogged tenant.
    private const string FlushScript = """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local me = ARGV[1]
        local stale = tonumber(ARGV[2])
        local all = redis.call('HGETALL', KEYS[2])
        local alive = {[me] = true}
        for i = 1, #all, 2 do
          local replica, tenant = string.match(all[i], '^([^|]*)|(.*)$')
          if tenant == '' then
            alive[replica] = alive[replica] or now - tonumber(all[i + 1]) <= stale
          end
        end
        if ARGV[3] == '' then
          redis.call('HDEL', KEYS[3], me)
        else
          redis.call('HSET', KEYS[3], me, ARGV[3])
        end
        local queues = redis.call('HGETALL', KEYS[3])
        local out = {0}
        for i = 1, #queues, 2 do
          if queues[i] ~= me and alive[queues[i]] then
            out[1] = out[1] + 1
            out[#out + 1] = queues[i + 1]
          elseif queues[i] ~= me then
            redis.call('HDEL', KEYS[3], queues[i])
          end
        end
        local waiting = {}
        for i = 1, #all, 2 do
          local replica, tenant = string.match(all[i], '^([^|]*)|(.*)$')
          if not alive[replica] then
            redis.call('HDEL', KEYS[2], all[i])
          elseif tenant ~= '' and replica ~= me then
            waiting[tenant] = true
          elseif tenant ~= '' then
            waiting[tenant] = waiting[tenant] or false
          end
        end
        local least = nil
        for tenant, _ in pairs(waiting) do
          local counter = tonumber(redis.call('HGET', KEYS[1], tenant) or '0')
          if least == nil or counter < least then
            least = counter
          end
        end
        for i = 4, #ARGV, 3 do
          local tenant, delta, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
          if count > 0 and waiting[tenant] == nil and least ~= nil then
            local counter = tonumber(redis.call('HGET', KEYS[1], tenant) or '0')
            if counter < least then
              redis.call('HSET', KEYS[1], tenant, least)
            end
          end
          out[#out + 1] = redis.call('HINCRBY', KEYS[1], tenant, delta)
          if count > 0 then
            redis.call('HSET', KEYS[2], me .. '|' .. tenant, count)
            waiting[tenant] = true
          else
            redis.call('HDEL', KEYS[2], me .. '|' .. tenant)
            if waiting[tenant] == false then
              waiting[tenant] = nil
            end
          end
        end
        redis.call('HSET', KEYS[2], me .. '|', now)
        for tenant, _ in pairs(waiting) do
          out[#out + 1] = tenant
          out[#out + 1] = tonumber(redis.call('HGET', KEYS[1], tenant) or '0')
        end
        return out
        """;

    // 50 ms: one small round trip per replica, 20 a second, against requests that last seconds.
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);

    private static readonly TimeSpan StaleReplica = TimeSpan.FromSeconds(1);

    // The flush script's arguments before its triples.
    private const int FlushArgs = 3;

    private readonly ConcurrentDictionary<string, SharedVtc> _models = new(StringComparer.Ordinal);
    private readonly Func<IConnectionMultiplexer?> _connection;
    private readonly Func<string> _replica;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly BackgroundLoop _loops = new();

    public SharedFairShare(Func<IConnectionMultiplexer?> connection, Func<string> replica, TimeSpan interval, TimeProvider time)
    {
        _connection = connection;
        _replica = replica;
        _interval = interval;
        _time = time;
    }

    public ICollection<SharedVtc> Models => _models.Values;

    // The model's shared counters, attached to it: its grants ask them from now on.
    public SharedVtc Attach(ModelAdmission model)
    {
        var shared = _models.GetOrAdd(model.Model, static (_, state) => new SharedVtc(state.model, state.time, 2 * state.interval), (model, time: _time, interval: _interval));
        model.Fleet = shared;
        return shared;
    }

    // After membership has started (the replica is named).
    public void Start() => _loops.Start(RunAsync);

    private async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_interval, _time);
        while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
        {
            await FlushAsync().ConfigureAwait(false);
        }
    }

    // One round trip for all models; internal for the tests, which flush when they choose.
    internal async Task FlushAsync()
    {
        if (_connection() is not { IsConnected: true } redis || _models.IsEmpty)
        {
            return;
        }

        var replica = _replica();
        var batch = redis.GetDatabase().CreateBatch();
        var flushes = new List<(SharedVtc Model, List<(SharedVtcTenant Tenant, long Delta, int Waiting)> Sent, Task<RedisResult> Answer)>();
        foreach (var model in _models.Values)
        {
            var sent = model.Take();
            var args = new RedisValue[FlushArgs + (3 * sent.Count)];
            args[0] = replica;
            args[1] = (long)StaleReplica.TotalMilliseconds;
            args[2] = FleetQueues.Format(model.Model);
            for (var i = 0; i < sent.Count; i++)
            {
                args[FlushArgs + (3 * i)] = sent[i].Tenant.Field;
                args[FlushArgs + 1 + (3 * i)] = sent[i].Delta;
                args[FlushArgs + 2 + (3 * i)] = sent[i].Waiting;
            }

            var keys = new RedisKey[] { ClusterKeys.Vtc(model.Model.Model), ClusterKeys.Backlog(model.Model.Model), ClusterKeys.Queue(model.Model.Model) };
            flushes.Add((model, sent, batch.ScriptEvaluateAsync(FlushScript, keys, args)));
        }

        batch.Execute();
        foreach (var (model, sent, answer) in flushes)
        {
            try
            {
                var values = (RedisResult[])(await answer.ConfigureAwait(false))!;
                var fields = (int)values[0];
                var others = FleetQueues.Parse(values.Skip(1).Take(fields).Select(v => (string)v!));
                var from = 1 + fields;
                var counters = new long[sent.Count];
                for (var i = 0; i < sent.Count; i++)
                {
                    counters[i] = (long)values[from + i];
                }

                from += sent.Count;
                var backlogged = new KeyValuePair<string, long>[(values.Length - from) / 2];
                for (var i = 0; i < backlogged.Length; i++)
                {
                    backlogged[i] = new((string)values[from + (2 * i)]!, (long)values[from + (2 * i) + 1]);
                }

                model.Answered(sent, counters, backlogged, others);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                SharedVtc.Failed(sent);
            }

            if (model.Model.Waiting > 0)
            {
                model.Model.Dispatch();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
    }
}
