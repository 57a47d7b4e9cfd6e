using Microsoft.Extensions.Logging;

namespace AotProxy.Configuration;

// Reloads the store when its file changes. Watches the directory, not the file: editors save
// by writing a temp file and renaming it over the original (a Renamed or Created event on the
// name, and the original inode is gone), while `echo >>` or `sed -i`-less tools write in place
// (Changed). Events come in bursts (truncate, write, attribute change), so a reload runs once
// the file has been quiet for the debounce interval, on a timer thread, never the watcher's.
// A config that is a symlink is followed to its target too: an edit of the target in place
// happens in the target's directory, where the link's directory sees nothing. The link is
// resolved again before every reload, since a swap (ln -sfn, Kubernetes' "..data") retargets it.
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
    private readonly Lock _targetLock = new();
    private FileSystemWatcher? _targetWatcher; // on the symlink's final target; null when the path is no link
    private string? _target;
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
        _watcher = Watch(Path.GetDirectoryName(_path)!, OnEvent);
        FollowTarget();
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
        lock (_targetLock)
        {
            _targetWatcher?.Dispose();
            _targetWatcher = null;
        }

        _timer.Dispose();
    }

    private void OnEvent(object sender, FileSystemEventArgs e) => OnChange(e, inTargetDirectory: false);

    // An event in the target's directory: only the target's own name counts.
    private void OnTargetEvent(object sender, FileSystemEventArgs e) => OnChange(e, inTargetDirectory: true);

    private void OnChange(FileSystemEventArgs e, bool inTargetDirectory)
    {
        try
        {
            var changed = inTargetDirectory ? TargetNamed(e.Name) : IsOurs(e.Name) ? _path : null;
            if (changed is not null)
            {
                ConfigLog.ChangeSeen(_logger, changed, e.ChangeType);
                Arm();
            }
            else
            {
                ConfigLog.ChangeIgnored(_logger, _path, e.Name, e.ChangeType);
            }
        }
        catch (Exception ex)
        {
            // An exception here would be lost on the watcher's thread; never let it escape.
            ConfigLog.ReloadThrew(_logger, _path, ex);
        }
    }

    // The symlink's target when `name` is its file name, else null.
    private string? TargetNamed(string? name) =>
        Volatile.Read(ref _target) is { } target && string.Equals(name, Path.GetFileName(target), FileNameComparison) ? target : null;

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
            // The link first: an edit of a new target after this point arms another reload,
            // one before it is in what this reload reads.
            FollowTarget();

            // The store logs the outcome (applied, or each error with its line and key).
            _store.Reload();
        }
        catch (Exception ex)
        {
            ConfigLog.ReloadThrew(_logger, _path, ex);
        }
    }

    // (Re)watches the directory of the symlink's final target when the target has changed;
    // stops watching when the path is no longer a link.
    private void FollowTarget()
    {
        var target = ResolveTarget(_path);

        lock (_targetLock)
        {
            if (Volatile.Read(ref _disposed) != 0 || string.Equals(target, _target, FileNameComparison))
            {
                return;
            }

            _targetWatcher?.Dispose();
            _targetWatcher = null;
            Volatile.Write(ref _target, target);
            if (target is not null && Path.GetDirectoryName(target) is { } directory && Directory.Exists(directory))
            {
                _targetWatcher = Watch(directory, OnTargetEvent);
                ConfigLog.WatchTarget(_logger, _path, target);
            }
        }
    }

    // The file a symlinked config really is, null when the path is no link. Its directory is
    // resolved too when that is a link: Kubernetes mounts "aotproxy.toml -> ..data/aotproxy.toml"
    // with "..data -> ..2026_12_05_00_00_00.1", and a swap changes only "..data".
    private static string? ResolveTarget(string path)
    {
        try
        {
            if (File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName is not { } file)
            {
                return null;
            }

            var directory = Path.GetDirectoryName(file)!;
            var real = Directory.ResolveLinkTarget(directory, returnFinalTarget: true)?.FullName ?? directory;
            return Path.Combine(real, Path.GetFileName(file));
        }
        catch (IOException)
        {
            return null; // a dangling or looping link: the reload reports the file as unreadable
        }
    }

    private FileSystemWatcher Watch(string directory, FileSystemEventHandler onEvent)
    {
        var watcher = new FileSystemWatcher(directory)
        {
            IncludeSubdirectories = false,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        watcher.Changed += onEvent;
        watcher.Created += onEvent;
        watcher.Renamed += (sender, e) => onEvent(sender, e);
        watcher.Error += OnError;
        watcher.EnableRaisingEvents = true;
        return watcher;
    }
}
