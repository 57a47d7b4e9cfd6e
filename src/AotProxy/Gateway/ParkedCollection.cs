using Microsoft.Extensions.Logging;

namespace AotProxy.Gateway;

// One full collection after a batch of idle connections parked (server.park_idle_after), once the
// data plane is quiet. A parked connection's Kestrel HTTP state is garbage, but it was promoted
// while the connection was busy, and an idle gateway allocates nothing that would start the
// collection that frees it: with parking alone RSS stayed at 11.6 KiB per idle connection, 5.7
// after a compacting collection (perf/RESULTS.md, park22). Checked once a second off the hot
// path, from counters the data plane keeps anyway; never while a request is in flight upstream
// or the data plane allocates.
internal sealed class ParkedCollection : IAsyncDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    // Parks since the last collection before one is worth its pause: ~4 KB of Kestrel state each,
    // so a collection frees at least ~1 MB.
    public const long Batch = 256;

    // More allocated than this in the last interval is a busy data plane: a proxied request takes
    // ~0.5 KB, a new or resumed connection ~8 KB (some 2,000 requests or 100 connections a second).
    public const long QuietAllocatedBytes = 1 << 20;

    private readonly Func<long> _parks;
    private readonly Func<long> _inFlight;
    private readonly Func<long> _allocatedBytes;
    private readonly Func<(long Before, long After, TimeSpan Pause)> _collect;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private long _parksAtLast;
    private long _allocatedAtLast;
    private long _collections;
    private long _pauseTicks;
    private int _ticking;

    public ParkedCollection(Func<long> parks, Func<long> inFlight, Func<long> allocatedBytes, Func<(long Before, long After, TimeSpan Pause)> collect, TimeProvider time, ILogger logger)
    {
        _parks = parks;
        _inFlight = inFlight;
        _allocatedBytes = allocatedBytes;
        _collect = collect;
        _logger = logger;
        _allocatedAtLast = allocatedBytes();
        _timer = time.CreateTimer(static state => ((ParkedCollection)state!).Tick(), this, Interval, Interval);
    }

    // Collections run, and the time the process stood still in them.
    public long Collections => Volatile.Read(ref _collections);

    public TimeSpan Paused => TimeSpan.FromTicks(Volatile.Read(ref _pauseTicks));

    public ValueTask DisposeAsync() => _timer.DisposeAsync();

    private void Tick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) == 1)
        {
            return; // the previous tick is still collecting
        }

        try
        {
            var allocated = _allocatedBytes();
            var quiet = allocated - _allocatedAtLast < QuietAllocatedBytes && _inFlight() == 0;
            _allocatedAtLast = allocated;
            var parks = _parks() - _parksAtLast;
            if (!quiet || parks < Batch)
            {
                return;
            }

            _parksAtLast += parks;
            var (before, after, pause) = _collect();
            _allocatedAtLast = _allocatedBytes(); // the collection's own allocations are not traffic
            Interlocked.Add(ref _pauseTicks, pause.Ticks);
            Interlocked.Increment(ref _collections);
            var level = HeapCompaction.LevelFor(pause);
            GatewayLog.CollectedParked(_logger, level, parks, before >> 20, after >> 20, pause.TotalMilliseconds);
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }
}
