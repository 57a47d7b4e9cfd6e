using AotProxy.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Configuration;

// Real files, real FileSystemWatcher: each test waits for the outcome with a bounded poll. The
// checks that something does NOT happen run the debounce on a FakeTimeProvider instead: they
// wait for the event to arrive, then advance the clock past the debounce.
public sealed class ConfigWatcherTests : IDisposable
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(50);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("aotproxy-watch-");
    private readonly ListLogger _logger = new();

    private string ConfigPath => Path.Combine(_dir.FullName, "aotproxy.toml");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Watch_InPlaceEdit_AppliedAfterDebounce()
    {
        var store = Open(1000);
        using var watcher = new ConfigWatcher(store, _logger, Debounce);

        File.WriteAllText(ConfigPath, Config(2000));

        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 2000), "in-place edit not applied");
        Assert.True(store.LastReload.Ok);
        // The reload is logged just after the new snapshot is swapped in, on the watcher's thread.
        Assert.True(await TestConfig.WaitUntil(() => _logger.Entries.Any(e => e.EventId == 100 && e.Level == LogLevel.Information)), "reload not logged");
    }

    [Fact]
    public async Task Watch_AtomicRename_AppliedAfterDebounce()
    {
        var store = Open(1000);
        using var watcher = new ConfigWatcher(store, _logger, Debounce);
        var temp = Path.Combine(_dir.FullName, ".aotproxy.toml.tmp");

        File.WriteAllText(temp, Config(3000));
        File.Move(temp, ConfigPath, overwrite: true);

        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 3000), "atomic rename not applied");
        Assert.True(store.LastReload.Ok);
    }

    [Fact]
    public async Task Watch_BrokenEdit_KeptOutAndLogged()
    {
        var store = Open(1000);
        var first = store.Current;
        using var watcher = new ConfigWatcher(store, _logger, Debounce);

        File.WriteAllText(ConfigPath, "[server]\nmax_request_bytes = 2000\nmax_request_byts = 1\n");

        Assert.True(await TestConfig.WaitUntil(() => !store.LastReload.Ok), "broken edit never reloaded");
        Assert.Same(first, store.Current);
        Assert.Equal((3, "server.max_request_byts"), (store.LastReload.Errors[0].Line, store.LastReload.Errors[0].Key));
        Assert.True(await TestConfig.WaitUntil(() => _logger.Entries.Any(e => e.EventId == 102)), "error not logged");
        var logged = _logger.Entries.First(e => e.EventId == 102);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.Contains("line 3: server.max_request_byts", logged.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_BurstOfWrites_CoalescedIntoFewReloads()
    {
        var store = Open(1000);
        var reloads = 0;
        store.Reloaded += _ => Interlocked.Increment(ref reloads);
        using var watcher = new ConfigWatcher(store, _logger, TimeSpan.FromMilliseconds(300));

        for (var i = 1; i <= 10; i++)
        {
            File.WriteAllText(ConfigPath, Config(1000 + i));
        }

        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 1010), "last write not applied");
        Assert.True(Volatile.Read(ref reloads) < 10, $"{reloads} reloads for one burst");
    }

    // No sleeping: the watcher logs the other file's event as ignored (115), which proves the
    // event reached it; then the fake clock runs past the debounce, which would fire a reload
    // had the event armed it.
    [Fact]
    public async Task Watch_OtherFileInDirectory_Ignored()
    {
        var store = Open(1000);
        var first = store.Current;
        var time = new FakeTimeProvider();
        using var watcher = new ConfigWatcher(store, _logger, Debounce, time);

        File.WriteAllText(Path.Combine(_dir.FullName, "other.toml"), "x = 1");

        Assert.True(await TestConfig.WaitUntil(() => _logger.Entries.Any(e => e.EventId is 111 or 115)), "the other file's event never reached the watcher");
        time.Advance(Debounce);
        Assert.Same(first, store.Current);
        Assert.Contains(_logger.Entries, e => e.EventId == 115 && e.Message.Contains("other.toml", StringComparison.Ordinal));
    }

    // The disposed watcher and a live one (the witness) watch the same file on one fake clock.
    // Once the witness has seen the edit and then a later write next to it (one inotify queue
    // feeds every watcher in order, so a live disposed watcher would have been handed the edit
    // by then), the clock runs past the debounce: that reloads the witness's store, and would
    // reload the disposed watcher's had it armed its timer.
    [Fact]
    public async Task Dispose_ThenEdit_NoLongerReloads()
    {
        var store = Open(1000);
        var first = store.Current;
        var witnessStore = OpenAt(ConfigPath);
        var witnessLogger = new ListLogger();
        var time = new FakeTimeProvider();
        var watcher = new ConfigWatcher(store, _logger, Debounce, time);
        using var witness = new ConfigWatcher(witnessStore, witnessLogger, Debounce, time);
        watcher.Dispose();

        File.WriteAllText(ConfigPath, Config(2000));
        File.WriteAllText(Path.Combine(_dir.FullName, "later.toml"), "x = 1");

        Assert.True(await TestConfig.WaitUntil(() => witnessLogger.Entries.Any(e => e.EventId == 115)), "the later write never reached the live watcher");
        time.Advance(Debounce);
        Assert.Equal(2000, witnessStore.Current.Server.MaxRequestBytes);
        Assert.Same(first, store.Current);
    }

    // Issue 14, item 13: the config is a symlink into another directory (a checkout, a volume)
    // and the target is edited in place; the link's own directory sees no event.
    [Fact]
    public async Task Watch_SymlinkTargetEditedInPlace_Applied()
    {
        var target = Path.Combine(_dir.CreateSubdirectory("real").FullName, "gateway.toml");
        File.WriteAllText(target, Config(1000));
        var link = Path.Combine(_dir.CreateSubdirectory("etc").FullName, "aotproxy.toml");
        File.CreateSymbolicLink(link, "../real/gateway.toml");
        var store = OpenAt(link);
        using var watcher = new ConfigWatcher(store, _logger, Debounce);

        File.WriteAllText(target, Config(2000));

        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 2000), "in-place edit of the link's target not applied");
    }

    // The link is pointed at another file (ln -sfn: a rename over the link, seen in its
    // directory); edits to the new target count from then on, and the old one no longer does.
    [Fact]
    public async Task Watch_SymlinkRetargeted_FollowsTheNewTarget()
    {
        var real = _dir.CreateSubdirectory("real").FullName;
        File.WriteAllText(Path.Combine(real, "a.toml"), Config(1000));
        File.WriteAllText(Path.Combine(real, "b.toml"), Config(3000));
        var etc = _dir.CreateSubdirectory("etc").FullName;
        var link = Path.Combine(etc, "aotproxy.toml");
        File.CreateSymbolicLink(link, "../real/a.toml");
        var store = OpenAt(link);
        using var watcher = new ConfigWatcher(store, _logger, Debounce);

        var swap = Path.Combine(etc, ".aotproxy.toml.new");
        File.CreateSymbolicLink(swap, "../real/b.toml");
        File.Move(swap, link, overwrite: true);
        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 3000), "retargeted link not applied");

        File.WriteAllText(Path.Combine(real, "b.toml"), Config(4000));

        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 4000), "in-place edit of the new target not applied");
    }

    // A Kubernetes ConfigMap volume: aotproxy.toml -> ..data/aotproxy.toml, ..data -> a dated
    // directory. An update swaps "..data" to a new directory (a rename in the mount); then the new
    // directory's file is followed, as an in-place edit of it shows.
    [Fact]
    public async Task Watch_ConfigMapSwap_AppliedAndTheNewTargetFollowed()
    {
        var mount = _dir.CreateSubdirectory("config").FullName;
        Directory.CreateDirectory(Path.Combine(mount, "..2026_12_05_a"));
        File.WriteAllText(Path.Combine(mount, "..2026_12_05_a", "aotproxy.toml"), Config(1000));
        Directory.CreateSymbolicLink(Path.Combine(mount, "..data"), "..2026_12_05_a");
        var link = Path.Combine(mount, "aotproxy.toml");
        File.CreateSymbolicLink(link, "..data/aotproxy.toml");
        var store = OpenAt(link);
        using var watcher = new ConfigWatcher(store, _logger, Debounce);

        Directory.CreateDirectory(Path.Combine(mount, "..2026_12_05_b"));
        File.WriteAllText(Path.Combine(mount, "..2026_12_05_b", "aotproxy.toml"), Config(2000));
        Directory.CreateSymbolicLink(Path.Combine(mount, "..data_tmp"), "..2026_12_05_b");
        // rename(2) over the old link, as the kubelet does; File.Move refuses a link to a directory.
        using (var mv = System.Diagnostics.Process.Start("mv", ["-T", Path.Combine(mount, "..data_tmp"), Path.Combine(mount, "..data")]))
        {
            await mv.WaitForExitAsync();
            Assert.Equal(0, mv.ExitCode);
        }

        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 2000), "ConfigMap swap not applied");

        File.WriteAllText(Path.Combine(mount, "..2026_12_05_b", "aotproxy.toml"), Config(3000));

        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 3000), "in-place edit after the swap not applied");
    }

    [Fact]
    public void Constructor_EmbeddedStore_Throws()
    {
        var store = new ConfigStore(TestConfig.Valid(""), path: null, TimeProvider.System, NullLogger.Instance);

        Assert.Throws<ArgumentException>(() => new ConfigWatcher(store, _logger, Debounce));
    }

    private ConfigStore Open(long maxRequestBytes)
    {
        File.WriteAllText(ConfigPath, Config(maxRequestBytes));
        return OpenAt(ConfigPath);
    }

    private ConfigStore OpenAt(string path)
    {
        var result = ConfigStore.TryOpen(path, TimeProvider.System, _logger, out var store);
        Assert.True(result.IsValid, result.ToString());
        return store!;
    }

    private static string Config(long maxRequestBytes) => $"[server]\nmax_request_bytes = {maxRequestBytes}\n";
}
