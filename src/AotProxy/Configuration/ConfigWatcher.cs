using Microsoft.Extensions.Logging;

namespace AotProxy.Configuration;

// Reloads the store when its file changes. Watches the directory, not the file: editors save
// by writing a temp file and renaming it over the original (a Renamed or Created event on the
// name, and the original inode is gone), while `echo >>` or `sed -i`-less tools write in place
// (Changed). Events come in bursts (truncate, write, attribute change), so a reload runs once
// the file has been quiet for the debounce interval, on a timer thread, never the watcher's.
internal sealed class ConfigWatcher : IDisposable
{
    // 250 ms: an editor's save burst is over within ~50 ms; an operator does not notice 250.
    public static readonly TimeSpan DefaultDebounce = TimeSpan.FromMilliseconds(250);

    private static readonly StringComparison FileNameComparison =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    private readonly ConfigStore _store;
    private readonly ILogger _logger;
    private readonly string _path;
    private readonly string _fileName;
    private readonly TimeSpan _debounce;
    private readonly ITimer _timer;
    private readonly FileSystemWatcher _watcher;
    private int _disposed;

    public ConfigWatcher(ConfigStore store, ILogger logger, TimeSpan? debounce = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(logger);
        _store = store;
        _logger = logger;
        _path = store.Path ?? throw new ArgumentException("An embedded configuration has no file to watch.", nameof(store));
        _fileName = Path.GetFileName(_path);
        _debounce = debounce ?? DefaultDebounce;
        if (_debounce <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(debounce), _debounce, "The debounce interval must be positive.");
        }

        _timer = (time ?? TimeProvider.System).CreateTimer(_ => OnQuiet(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(_path)!)
        {
            IncludeSubdirectories = false,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        _watcher.Changed += OnEvent;
        _watcher.Created += OnEvent;
        _watcher.Renamed += OnEvent;
        _watcher.Error += OnError;
        _watcher.EnableRaisingEvents = true;
        ConfigLog.WatchStarted(_logger, _path, _debounce.TotalMilliseconds);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _watcher.EnableRaisingEvents = false;
        _watcher.Dispose();
        _timer.Dispose();
    }

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        try
        {
            if (IsOurs(e.Name))
            {
                ConfigLog.ChangeSeen(_logger, _path, e.ChangeType);
                Arm();
            }
        }
        catch (Exception ex)
        {
            // An exception here would be lost on the watcher's thread; never let it escape.
            ConfigLog.ReloadThrew(_logger, _path, ex);
        }
    }

    private void OnError(object sender, ErrorEventArgs e)
    {
        try
        {
            // Usually an overflowed event buffer: a change may have been missed, so reload anyway.
            ConfigLog.WatcherFailed(_logger, _path, e.GetException());
            Arm();
        }
        catch (Exception ex)
        {
            ConfigLog.ReloadThrew(_logger, _path, ex);
        }
    }

    // The file itself, or Kubernetes' "..data" symlink swap, which replaces a mounted
    // ConfigMap without any event on the file's own name.
    private bool IsOurs(string? name) =>
        name is not null && (string.Equals(name, _fileName, FileNameComparison) || name.StartsWith("..", StringComparison.Ordinal));

    private void Arm()
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            try
            {
                _timer.Change(_debounce, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Disposed between the check and the call: nothing left to reload.
            }
        }
    }

    private void OnQuiet()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        try
        {
            // The store logs the outcome (applied, or each error with its line and key).
            _store.Reload();
        }
        catch (Exception ex)
        {
            ConfigLog.ReloadThrew(_logger, _path, ex);
        }
    }
}
