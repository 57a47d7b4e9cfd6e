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

    [Fact]
    public void Constructor_EmbeddedStore_Throws()
    {
        var store = new ConfigStore(TestConfig.Valid(""), path: null, TimeProvider.System, NullLogger.Instance);

        Assert.Throws<ArgumentException>(() => new ConfigWatcher(store, _logger, Debounce));
    }

    private ConfigStore Open(long maxRequestBytes)
    {
        File.WriteAllText(ConfigPath, Config(maxRequestBytes));
        var result = ConfigStore.TryOpen(ConfigPath, TimeProvider.System, _logger, out var store);
        Assert.True(result.IsValid, result.ToString());
        return store!;
    }

    private static string Config(long maxRequestBytes) => $"[server]\nmax_request_bytes = {maxRequestBytes}\n";
}
