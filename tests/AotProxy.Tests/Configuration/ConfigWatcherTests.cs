using Microsoft.Extensions.Logging.Abstractions;
using AotProxy.Configuration;
using Microsoft.Extensions.Logging;

namespace AotProxy.Tests.Configuration;

// Real files, real FileSystemWatcher: each test waits for the outcome with a bounded poll.
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

    [Fact]
    public async Task Watch_OtherFileInDirectory_Ignored()
    {
        var store = Open(1000);
        var reloads = 0;
        store.Reloaded += _ => Interlocked.Increment(ref reloads);
        // 200 ms: a straggling event from the marker write below must not pass for a reload
        // caused by the other file.
        using var watcher = new ConfigWatcher(store, _logger, TimeSpan.FromMilliseconds(200));
        // First prove the watcher is live, so that "no reload" below cannot mean "not watching".
        File.WriteAllText(ConfigPath, Config(1001));
        Assert.True(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 1001));
        var before = Volatile.Read(ref reloads);

        File.WriteAllText(Path.Combine(_dir.FullName, "other.toml"), "x = 1");

        Assert.False(await TestConfig.WaitUntil(() => Volatile.Read(ref reloads) != before, TimeSpan.FromMilliseconds(500)));
    }

    [Fact]
    public async Task Dispose_ThenEdit_NoLongerReloads()
    {
        var store = Open(1000);
        var watcher = new ConfigWatcher(store, _logger, Debounce);
        watcher.Dispose();

        File.WriteAllText(ConfigPath, Config(2000));

        Assert.False(await TestConfig.WaitUntil(() => store.Current.Server.MaxRequestBytes == 2000, TimeSpan.FromMilliseconds(500)));
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
