using AotProxy.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Configuration;

public sealed class ConfigStoreTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("aotproxy-store-");
    private readonly FakeTimeProvider _time = new(TestConfig.Now);

    private string ConfigPath => Path.Combine(_dir.FullName, "aotproxy.toml");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void TryOpen_ValidFile_StartsAtRevisionOne()
    {
        File.WriteAllText(ConfigPath, Config(maxRequestBytes: 1000));

        var result = ConfigStore.TryOpen(ConfigPath, _time, NullLogger.Instance, out var store);

        Assert.True(result.IsValid, result.ToString());
        Assert.NotNull(store);
        Assert.Equal(1, store.Current.Revision);
        Assert.Equal(1000, store.Current.Server.MaxRequestBytes);
        Assert.Equal((TestConfig.Now, true, 1L), (store.LastReload.At, store.LastReload.Ok, store.LastReload.Revision));
        Assert.Empty(store.LastReload.Errors);
        Assert.Equal(ConfigPath, store.Path);
    }

    [Fact]
    public void Reload_FileTruncatedByAnInPlaceWrite_KeepsTheCurrentSnapshot()
    {
        File.WriteAllText(ConfigPath, Config(maxRequestBytes: 1000));
        ConfigStore.TryOpen(ConfigPath, _time, NullLogger.Instance, out var store);

        File.WriteAllText(ConfigPath, "  \n");
        var status = store!.Reload();

        Assert.False(status.Ok);
        Assert.Contains("empty", status.Errors[0].Message, StringComparison.Ordinal);
        Assert.Equal(1, store.Current.Revision);
        Assert.Equal(1000, store.Current.Server.MaxRequestBytes);
    }

    [Fact]
    public void TryOpen_InvalidFile_GivesErrorsAndNoStore()
    {
        File.WriteAllText(ConfigPath, "[server]\nmax_request_bytes = 0");

        var result = ConfigStore.TryOpen(ConfigPath, _time, NullLogger.Instance, out var store);

        Assert.Null(store);
        Assert.Equal((2, "server.max_request_bytes"), (result.Errors[0].Line, result.Errors[0].Key));
    }

    [Fact]
    public void Reload_ValidChange_BumpsRevisionSwapsAndAppliesIt()
    {
        var store = Open(Config(maxRequestBytes: 1000));
        var first = store.Current;
        var applied = new List<GatewaySnapshot>();
        var reloads = new List<ReloadStatus>();
        store.AppliesTo(applied.Add);
        store.Reloaded += reloads.Add;
        File.WriteAllText(ConfigPath, Config(maxRequestBytes: 2000));
        _time.Advance(TimeSpan.FromMinutes(1));

        var status = store.Reload();

        Assert.True(status.Ok);
        Assert.Equal(2, status.Revision);
        Assert.Equal(TestConfig.Now.AddMinutes(1), status.At);
        Assert.Equal(2, store.Current.Revision);
        Assert.Equal(2000, store.Current.Server.MaxRequestBytes);
        Assert.Same(status, store.LastReload);
        Assert.Same(store.Current, Assert.Single(applied));
        Assert.NotSame(first, store.Current);
        Assert.Same(status, Assert.Single(reloads));
    }

    [Fact]
    public void Reload_InvalidChange_KeepsOldSnapshotAndReportsErrors()
    {
        var store = Open(Config(maxRequestBytes: 1000));
        var first = store.Current;
        var changed = 0;
        var reloads = new List<ReloadStatus>();
        store.AppliesTo(_ => changed++);
        store.Reloaded += reloads.Add;
        File.WriteAllText(ConfigPath, "[server]\nmax_request_bytes = 2000\n[routing]\nstrategy = \"random\"\nbogus = 1\n");

        var status = store.Reload();

        Assert.False(status.Ok);
        Assert.Equal(1, status.Revision);
        Assert.Equal([(4, "routing.strategy"), (5, "routing.bogus")], status.Errors.Select(e => (e.Line, e.Key)));
        Assert.Same(first, store.Current);
        Assert.Same(status, store.LastReload);
        Assert.Equal(0, changed);
        Assert.Same(status, Assert.Single(reloads));
    }

    [Fact]
    public void Reload_AfterRejectedChange_NextValidChangeGetsNextRevision()
    {
        var store = Open(Config(maxRequestBytes: 1000));
        File.WriteAllText(ConfigPath, "not toml at all = = =");
        Assert.False(store.Reload().Ok);
        File.WriteAllText(ConfigPath, Config(maxRequestBytes: 3000));

        var status = store.Reload();

        Assert.True(status.Ok);
        Assert.Equal(2, store.Current.Revision);
    }

    [Fact]
    public void Reload_FileDeleted_ReportsErrorAndKeepsSnapshot()
    {
        var store = Open(Config(maxRequestBytes: 1000));
        var first = store.Current;
        File.Delete(ConfigPath);

        var status = store.Reload();

        Assert.False(status.Ok);
        Assert.Equal(0, Assert.Single(status.Errors).Line);
        Assert.Same(first, store.Current);
    }

    [Fact]
    public void Reload_EmbeddedConfig_ReportsUnavailableWithoutThrowing()
    {
        var snapshot = TestConfig.Valid(Config(maxRequestBytes: 1000));
        var store = new ConfigStore(snapshot, path: null, _time, NullLogger.Instance);
        ReloadStatus? fired = null;
        store.Reloaded += s => fired = s;

        var status = store.Reload();

        Assert.False(status.Ok);
        Assert.Equal(1, status.Revision);
        Assert.Contains("unavailable", Assert.Single(status.Errors).Message, StringComparison.Ordinal);
        Assert.Same(snapshot, store.Current);
        Assert.Same(status, fired);
        Assert.Null(store.Path);
    }

    [Fact]
    public void Reload_RejectedChange_LogsEachErrorWithLineAndKey()
    {
        var logger = new ListLogger();
        File.WriteAllText(ConfigPath, Config(maxRequestBytes: 1000));
        ConfigStore.TryOpen(ConfigPath, _time, logger, out var store);
        File.WriteAllText(ConfigPath, "[server]\nmax_request_bytes = 0\n[scheduler]\npolicy = \"x\"\n");

        store!.Reload();

        var errors = logger.Entries.Where(e => e.Level == Microsoft.Extensions.Logging.LogLevel.Error).ToList();
        Assert.Equal([102, 102], errors.Select(e => e.EventId));
        Assert.Contains("line 2: server.max_request_bytes", errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("line 4: scheduler.policy", errors[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reload_AppliedChange_LogsInformation()
    {
        var logger = new ListLogger();
        File.WriteAllText(ConfigPath, Config(maxRequestBytes: 1000));
        ConfigStore.TryOpen(ConfigPath, _time, logger, out var store);

        store!.Reload();

        var entry = Assert.Single(logger.Entries);
        Assert.Equal((Microsoft.Extensions.Logging.LogLevel.Information, 100), (entry.Level, entry.EventId));
    }

    [Fact]
    public async Task Reload_ManyWhileReading_ReadersAlwaysSeeAWholeSnapshot()
    {
        var store = Open(Config(maxRequestBytes: 1000, workers: 0));
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var reads = 0L;

        // Every file written below keeps max_request_bytes == 1000 + worker count, so a reader
        // seeing any other pair would have seen a torn snapshot.
        // Dedicated threads: the test runner's pool may be busy with other tests, and readers
        // that start only after the last reload would prove nothing.
        using var started = new CountdownEvent(4);
        var readers = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
        {
            started.Signal();
            long lastRevision = 0;
            while (!stop.IsCancellationRequested)
            {
                var snapshot = store.Current;
                if (snapshot.Server.MaxRequestBytes != 1000 + snapshot.Workers.Length
                    || snapshot.Revision < lastRevision
                    || snapshot.Workers.Any(w => w.MaxConcurrency != snapshot.Revision))
                {
                    Interlocked.Increment(ref failures);
                }

                lastRevision = snapshot.Revision;
                Interlocked.Increment(ref reads);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        Assert.True(started.Wait(TimeSpan.FromSeconds(10)), "readers did not start");

        for (var revision = 2; revision <= 60; revision++)
        {
            var workers = revision % 7;
            File.WriteAllText(ConfigPath, Config(maxRequestBytes: 1000 + workers, workers, maxConcurrency: revision));
            Assert.True(store.Reload().Ok);
            if (revision % 10 == 0)
            {
                File.WriteAllText(ConfigPath, "[server]\nmax_request_bytes = -1");
                Assert.False(store.Reload().Ok);
            }
        }

        await stop.CancelAsync();
        await Task.WhenAll(readers);

        Assert.Equal(0, failures);
        Assert.True(Interlocked.Read(ref reads) > 0);
        Assert.Equal(60, store.Current.Revision);
    }

    [Fact]
    public async Task Reload_Concurrent_RevisionsStayDense()
    {
        File.WriteAllText(ConfigPath, Config(maxRequestBytes: 1000));
        var store = Open(Config(maxRequestBytes: 1000));
        var revisions = new System.Collections.Concurrent.ConcurrentBag<long>();
        store.AppliesTo(current => revisions.Add(current.Revision));

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 10; i++)
            {
                store.Reload();
            }
        })));

        Assert.Equal(81, store.Current.Revision);
        Assert.Equal(Enumerable.Range(2, 80).Select(r => (long)r), revisions.Order());
    }

    // One component applies the store's snapshots (GatewayState): a second is refused.
    [Fact]
    public void AppliesTo_ASecondComponent_IsRefused()
    {
        var store = Open(Config(maxRequestBytes: 1000));
        store.AppliesTo(_ => { });

        Assert.Throws<InvalidOperationException>(() => store.AppliesTo(_ => { }));
    }

    private ConfigStore Open(string toml)
    {
        File.WriteAllText(ConfigPath, toml);
        var result = ConfigStore.TryOpen(ConfigPath, _time, NullLogger.Instance, out var store);
        Assert.True(result.IsValid, result.ToString());
        return store!;
    }

    private static string Config(long maxRequestBytes, int workers = 1, int maxConcurrency = 1)
    {
        var text = $"[server]\nmax_request_bytes = {maxRequestBytes}\n";
        for (var i = 0; i < workers; i++)
        {
            text += $"[[workers]]\nname = \"w{i}\"\nurl = \"http://10.0.0.{i}:8000\"\nmax_concurrency = {maxConcurrency}\n";
        }

        return text;
    }
}
