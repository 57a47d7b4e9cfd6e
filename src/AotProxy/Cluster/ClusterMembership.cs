using System.Collections.Immutable;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Threading;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// This replica in the cluster: one connection to Redis and a heartbeat on the gateway's clock.
// Each beat writes this replica's record with member_ttl (one round trip, pipelined with reading
// the member names) and then reads every member's record back (a second round trip). A replica
// that stops beating (SIGKILL, a partition) leaves the list when its record expires: at most
// member_ttl after its last beat, by Redis's clock, so the replicas' clocks need not agree.
// A beat that fails marks the store down: /api/cluster and /ready say degraded until one succeeds
// and the resync after it lets shared decisions resume (Health).
// A member whose record expired is reaped by the first beat that finds it (ReplicaReaper): its
// parts of the shared reserved totals (tenants' and workers') are subtracted and its name removed.
// At most member_ttl + heartbeat after the dead replica's last beat its record is gone, and the
// next beat of any survivor (one heartbeat) reaps it: the bound docs/CLUSTER.md states.
internal sealed class ClusterMembership : IAsyncDisposable
{
    private readonly ClusterModel _model;
    private readonly RedisAddress _store;
    private readonly string _storeText;
    private readonly Func<GatewaySnapshot> _config;
    private readonly Func<long> _inFlight;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DateTimeOffset _started;
    private readonly string _instance = Guid.NewGuid().ToString("N")[..12];
    private readonly BackgroundLoop _loops = new();
    private ConnectionMultiplexer? _redis;
    private IConnectionMultiplexer? _shared;
    private ClusterView _view = ClusterView.Starting;
    private TimeSpan _lastLatency;
    private string? _flaggedDigest;
    private string? _takenBy;

    // config: the snapshot requests run on now (its digest and revision go into each beat).
    public ClusterMembership(ClusterModel model, Func<GatewaySnapshot> config, Func<long> inFlight, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _store = model.Store ?? throw new ArgumentException("[cluster] has no redis_url", nameof(model));
        _storeText = _store.ToString();
        _config = config;
        _inFlight = inFlight;
        _time = time;
        _logger = logger;
        _started = time.GetUtcNow();
    }

    // Set by Start: [cluster].replica, or the host name and the bound data-plane port.
    public string Name { get; private set; } = string.Empty;

    public ClusterModel Model => _model;

    public RedisAddress Store => _store;

    public ClusterView Current => Volatile.Read(ref _view);

    // The replica's one connection to Redis, null until the heartbeat loop has made it; the
    // shared counters (SharedTenantLimits) use it too, so all of a replica's commands pipeline
    // on one socket.
    // Shared once this replica has released what a previous life under its name left reserved.
    public IConnectionMultiplexer? Connection => Volatile.Read(ref _shared);

    // Run after every beat that reached the store and as soon as the connection is restored
    // (GatewayHost sets it before Start): what the replica puts back into the store.
    public StoreResync? Resync { get; set; }

    // Healthy, or why this replica decides alone (store_down): the last beat could not reach the
    // store, or the store answers again (the last beat reached it, the connection is up) but shared
    // decisions wait for the resync (every seed of a new epoch in, at most member_ttl + 2 x
    // heartbeat). /api/cluster and /ready say degraded in both cases. Between the connection's
    // failure and the next beat's (at most one heartbeat) it still says healthy, as before: the
    // unreachable state carries the beat's error and failure count.
    public ClusterHealth Health =>
        !Current.StoreUp ? ClusterHealth.StoreUnreachable
        : Resync is { Resyncing: true } && Volatile.Read(ref _redis) is { IsConnected: true } ? ClusterHealth.Resyncing
        : ClusterHealth.Healthy;

    // Since when Health has not been healthy: the first failed beat, or the connection's failure
    // for a resync.
    public DateTimeOffset? DegradedSince => Health switch
    {
        ClusterHealth.StoreUnreachable => Current.StoreDownSince,
        ClusterHealth.Resyncing => Resync?.ResyncingSince,
        _ => null,
    };

    public void Start(int dataPort)
    {
        Name = _model.Replica.Length > 0 ? _model.Replica : $"{Environment.MachineName}:{dataPort}";
        ClusterLog.Joining(_logger, Name, _storeText, _model.Heartbeat, _model.MemberTtl, _model.StoreDown);
        _loops.Start(RunAsync);
    }

    private async Task RunAsync(CancellationToken stop)
    {
        // AbortOnConnectFail false: returns after one try even when Redis is down, and the client
        // keeps reconnecting in the background; the beats below report what it finds.
        var redis = await ConnectionMultiplexer.ConnectAsync(_store.Options()).ConfigureAwait(false);
        // A failed connection may come back to a store restarted empty: shared decisions wait
        // until the resync has found the epoch settled (StoreResync.Suspend).
        redis.ConnectionFailed += (_, _) => Resync?.Suspend();
        redis.ConnectionRestored += (_, _) => _ = Resync?.RunAsync(redis.GetDatabase());
        Volatile.Write(ref _redis, redis);
        using var timer = new PeriodicTimer(_model.Heartbeat, _time);
        do
        {
            await BeatAsync().ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false));
    }

    private async Task BeatAsync()
    {
        var db = _redis!.GetDatabase();
        var config = _config();
        var now = _time.GetUtcNow();
        var self = new ClusterMember(Name, _instance, GatewayVersion.Text, config.Digest, config.Revision, _inFlight(), _started, now, _lastLatency, _model.MemberTtl);
        try
        {
            if (_shared is null)
            {
                // A restart under this name before the old record expired is never found dead:
                // the previous life's parts are released here, before any request of this one
                // can reserve, and only then do the shared limits get the connection.
                var parts = await ReplicaReaper.ReleasePreviousLifeAsync(db, Name).ConfigureAwait(false);
                if (parts > 0)
                {
                    ClusterLog.ReleasedPreviousLife(_logger, Name, parts);
                }

                Volatile.Write(ref _shared, _redis);
            }

            var began = _time.GetTimestamp();
            var key = ClusterKeys.Member(Name);
            var batch = db.CreateBatch();
            var owner = batch.HashGetAsync(key, "instance");
            var write = batch.HashSetAsync(key, self.ToHash());
            var expire = batch.KeyExpireAsync(key, _model.MemberTtl);
            var add = batch.SetAddAsync(ClusterKeys.Members, Name);
            var names = batch.SetMembersAsync(ClusterKeys.Members);
            batch.Execute();
            await Task.WhenAll(owner, write, expire, add, names).ConfigureAwait(false);
            _lastLatency = _time.GetElapsedTime(began);
            NoteOwner((string?)await owner.ConfigureAwait(false));

            var read = db.CreateBatch();
            var records = (await names.ConfigureAwait(false)).Select(n => (string)n!).Where(n => n is not null).Select(n => (Name: n, Hash: read.HashGetAllAsync(ClusterKeys.Member(n)), Ttl: read.KeyTimeToLiveAsync(ClusterKeys.Member(n)))).ToList();
            read.Execute();
            await Task.WhenAll(records.SelectMany(r => new Task[] { r.Hash, r.Ttl })).ConfigureAwait(false);
            var members = ImmutableArray.CreateBuilder<ClusterMember>(records.Count);
            var gone = new List<string>();
            foreach (var (name, hash, ttl) in records)
            {
                if (ClusterMember.FromHash(await hash.ConfigureAwait(false), await ttl.ConfigureAwait(false)) is { } member)
                {
                    members.Add(member);
                }
                else
                {
                    gone.Add(name);
                }
            }

            foreach (var dead in gone)
            {
                // A name whose record expired: its replica stopped beating. Its reservations go
                // back and its name leaves the list in one script (ReplicaReaper), before this
                // beat publishes, so a view without it means its reservations are released; if
                // this beat's script is lost, the next beat finds the name again.
                var parts = await ReplicaReaper.ReapAsync(db, dead).ConfigureAwait(false);
                if (parts >= 0)
                {
                    ClusterLog.Reaped(_logger, dead, parts);
                }
            }

            members.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            Publish(new ClusterView(true, null, null, _lastLatency, _view.StoreFailures, members.ToImmutable(), now));
            if (Resync is { } resync)
            {
                await resync.RunAsync(db).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            var previous = _view;
            var since = previous.StoreUp || previous.StoreDownSince is null ? now : previous.StoreDownSince;
            Publish(previous with { StoreUp = false, Error = ex.Message, StoreDownSince = since, StoreFailures = previous.StoreFailures + 1 });
        }
    }

    private void Publish(ClusterView next)
    {
        var previous = Interlocked.Exchange(ref _view, next);
        if (previous.StoreUp && !next.StoreUp || previous == ClusterView.Starting && !next.StoreUp)
        {
            ClusterLog.StoreDown(_logger, _storeText, next.Error ?? string.Empty, _model.StoreDown);
        }
        else if (!previous.StoreUp && next.StoreUp && previous.StoreDownSince is { } since)
        {
            var downtime = next.MembersAt.GetValueOrDefault() - since;
            ClusterLog.StoreBack(_logger, _storeText, downtime, next.Members.Length);
        }

        if (next.StoreUp)
        {
            var self = next.Members.FirstOrDefault(m => m.Name == Name);
            var flagged = self is not null && next.Differs(self) ? self.Digest : null;
            if (flagged is not null && flagged != _flaggedDigest)
            {
                ClusterLog.ConfigDiffers(_logger, Name, flagged, next.MajorityDigest ?? "no majority");
            }

            _flaggedDigest = flagged;
        }
    }

    // The record's previous writer: another process under this name overwrites it in turn.
    private void NoteOwner(string? owner)
    {
        if (owner is { Length: > 0 } && owner != _instance && owner != _takenBy)
        {
            ClusterLog.NameTaken(_logger, Name, owner);
        }

        _takenBy = owner != _instance ? owner : _takenBy;
    }

    // A clean stop leaves the list at once instead of member_ttl later.
    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
        if (Resync is { } resync)
        {
            await resync.DisposeAsync().ConfigureAwait(false); // its seed from the shared ledger uses the connection
        }

        if (_redis is { IsConnected: true } redis)
        {
            try
            {
                var db = redis.GetDatabase();
                // The record first: the reap (which also takes the name off the list) gives back
                // whatever a request cut by the shutdown grace still held, only once it is gone.
                await db.KeyDeleteAsync(ClusterKeys.Member(Name)).ConfigureAwait(false);
                await ReplicaReaper.ReapAsync(db, Name).ConfigureAwait(false);
                ClusterLog.Left(_logger, Name);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // Unreachable now: the record expires on its own within member_ttl.
            }
        }

        if (_redis is not null)
        {
            // Lets queued commands complete: the settlements and releases the last requests sent
            // without waiting reach the store (behind the awaited DEL and reap above, when
            // connected). A close without that lost all 200 in ClusterMembershipTests.ACleanStop_...
            await _redis.DisposeAsync().ConfigureAwait(false);
        }
    }
}
