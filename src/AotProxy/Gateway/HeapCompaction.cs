using Microsoft.Extensions.Logging;

namespace AotProxy.Gateway;

// One full, compacting collection after the config is loaded (startup, reload), which gives the
// free memory back to the OS: a replaced snapshot, its limit state and what reading the file
// allocated sit in gen2, which a gateway that allocates next to nothing per request may not
// collect for hours (100k tenants, then a revert to one: RSS stayed at ~270 MB without it, 29 MB
// with it; perf/RESULTS.md has the figures and the pause, ~1-6 ms for a small config, ~300 ms
// with 100k tenants). Delay after the last applied reload, on a timer thread: by then the
// reload's own stack no longer holds the old snapshot, and a burst of reloads costs one collection.
internal sealed class HeapCompaction : IAsyncDisposable
{
    // 1 s: the watcher's debounce (250 ms) and a POST /api/config/reload right after an edit
    // both fit in it.
    public static readonly TimeSpan Delay = TimeSpan.FromSeconds(1);

    private readonly ITimer _timer;
    private readonly ILogger _logger;

    // Also once after startup: reading the file left garbage of the same kind.
    public HeapCompaction(TimeProvider time, ILogger logger)
    {
        _logger = logger;
        _timer = time.CreateTimer(static state => ((HeapCompaction)state!).Compact(), this, Delay, Timeout.InfiniteTimeSpan);
    }

    public void Schedule() => _timer.Change(Delay, Timeout.InfiniteTimeSpan);

    public ValueTask DisposeAsync() => _timer.DisposeAsync();

    // A pause that clients could notice (50 ms) is worth a line; a small config's 1-6 ms is not.
    public static LogLevel LevelFor(TimeSpan pause) => pause >= TimeSpan.FromMilliseconds(50) ? LogLevel.Information : LogLevel.Debug;

    // One full, compacting collection in the aggressive mode, which also gives the free regions
    // back to the OS at once (a gateway that allocates next to nothing afterwards would otherwise
    // decommit them only a little at each later collection). The GC heap before and after, and the pause.
    public static (long Before, long After, TimeSpan Pause) CompactNow()
    {
        var heap = GC.GetTotalMemory(forceFullCollection: false);
        var paused = GC.GetTotalPauseDuration();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var pause = GC.GetTotalPauseDuration() - paused;
        return (heap, GC.GetTotalMemory(forceFullCollection: false), pause);
    }

    private void Compact()
    {
        var (heap, after, pause) = CompactNow();
        var level = LevelFor(pause);
        GatewayLog.Compacted(_logger, level, heap >> 20, after >> 20, pause.TotalMilliseconds);
    }
}
