using System.Collections.Immutable;
using Microsoft.Extensions.Logging;

namespace AotProxy.Configuration;

// State: the snapshot in force. Requests read Current once, at their start; a reload builds a
// whole new snapshot off the hot path and swaps it in with one Interlocked.Exchange, so a
// reader sees either the old snapshot or the new one, never a mix (STYLE: Config -> Model -> State).
internal sealed class ConfigStore
{
    // Reloads are rare and off the hot path: serialising them keeps revisions dense and the
    // Changed events in order. Lock is re-entrant, so a handler may call Reload().
    private readonly Lock _reloadLock = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private volatile GatewaySnapshot _current;
    private volatile ReloadStatus _lastReload;

    // path null: the config is embedded (`aotproxy demo`) and cannot be reloaded.
    // The logger is required: every reload, whoever triggers it (watcher, POST /api/config/reload),
    // is logged here, applied at Information and each rejected error at Error with line and key.
    public ConfigStore(GatewaySnapshot initial, string? path, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(initial);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _current = initial;
        Path = path is null ? null : System.IO.Path.GetFullPath(path);
        _time = time;
        _logger = logger;
        _lastReload = new ReloadStatus(initial.LoadedAt, Ok: true, initial.Revision, []);
    }

    // Fired under the reload lock, after the swap: consumers rebuild their state for the new
    // snapshot (worker state carries over by name and URL).
    public event Action<GatewaySnapshot, GatewaySnapshot>? Changed;

    // Fired after every reload attempt, applied or not.
    public event Action<ReloadStatus>? Reloaded;

    public GatewaySnapshot Current => _current;

    public ReloadStatus LastReload => _lastReload;

    // The file reloads read; null for an embedded config.
    public string? Path { get; }

    // Loads the file at startup (revision 1). An invalid file gives no store: the caller prints
    // the errors and exits non-zero (SPEC: Config).
    public static ConfigLoadResult TryOpen(string path, TimeProvider time, ILogger logger, out ConfigStore? store)
    {
        var result = ConfigLoader.LoadFile(path, revision: 1, time);
        store = result.IsValid ? new ConfigStore(result.Snapshot, path, time, logger) : null;
        return result;
    }

    // Re-reads the file. Valid: a new snapshot with revision + 1 replaces the current one.
    // Invalid: the current snapshot stays, and the status carries every error.
    // Exceptions thrown by Changed/Reloaded handlers reach the caller; the swap has happened by then.
    public ReloadStatus Reload()
    {
        lock (_reloadLock)
        {
            var previous = _current;
            ReloadStatus status;
            GatewaySnapshot? next = null;
            if (Path is null)
            {
                var error = new ConfigError(0, "", "reload is unavailable: this configuration is embedded in the binary, not read from a file");
                ConfigLog.ReloadUnavailable(_logger, error.Message);
                status = new ReloadStatus(_time.GetUtcNow(), Ok: false, previous.Revision, [error]);
            }
            else
            {
                var result = ConfigLoader.LoadFile(Path, previous.Revision + 1, _time);
                if (result.IsValid)
                {
                    next = result.Snapshot;
                    Interlocked.Exchange(ref _current, next);
                    status = new ReloadStatus(next.LoadedAt, Ok: true, next.Revision, []);
                    ConfigLog.ReloadApplied(_logger, Path, next.Revision);
                }
                else
                {
                    status = new ReloadStatus(_time.GetUtcNow(), Ok: false, previous.Revision, result.Errors);
                    Report(Path, previous.Revision, result.Errors);
                }
            }

            _lastReload = status;
            if (next is not null)
            {
                Changed?.Invoke(previous, next);
            }

            Reloaded?.Invoke(status);
            return status;
        }
    }

    private void Report(string source, long revision, ImmutableArray<ConfigError> errors)
    {
        ConfigLog.ReloadRejected(_logger, source, errors.Length, revision);
        foreach (var error in errors)
        {
            ConfigLog.ConfigProblem(_logger, source, error.Line, error.Key, error.Message);
        }
    }
}
