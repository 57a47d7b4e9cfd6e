using System.Collections.Immutable;
using Microsoft.Extensions.Logging;

namespace AotProxy.Configuration;

// The config file's side (YARP's config provider): reads and validates the file, numbers the
// revisions, keeps the last valid snapshot and every reload's outcome, and hands each valid
// snapshot to the one component that applies it to all state (GatewayState, which publishes it
// with its workers for requests to read; requests never read Current here).
internal sealed class ConfigStore
{
    // Reloads are rare and off the hot path: serialising them keeps revisions dense and the
    // snapshots applied in order. Lock is re-entrant, so a handler may call Reload().
    private readonly Lock _reloadLock = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private volatile GatewaySnapshot _current;
    private volatile ReloadStatus _lastReload;
    private Action<GatewaySnapshot>? _apply;

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

    // What a valid file would break outside itself (the tenant store's tenants and keys,
    // TenantDirectory.Conflicts): errors reject the reload as the file's own would. null: nothing to check.
    public Func<GatewaySnapshot, ImmutableArray<ConfigError>>? Check { get; set; }

    // Fired after every reload attempt, applied or not.
    public event Action<ReloadStatus>? Reloaded;

    // The last valid snapshot read from the file: what the next revision counts from.
    public GatewaySnapshot Current => _current;

    public ReloadStatus LastReload => _lastReload;

    // The file reloads read; null for an embedded config.
    public string? Path { get; }

    // The one component that applies each valid snapshot, under the reload lock (GatewayState.Apply).
    public void AppliesTo(Action<GatewaySnapshot> apply)
    {
        ArgumentNullException.ThrowIfNull(apply);
        if (Interlocked.CompareExchange(ref _apply, apply, null) is not null)
        {
            throw new InvalidOperationException("The config store applies its snapshots to one component already.");
        }
    }

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
    // Exceptions thrown by the applier or a Reloaded handler reach the caller.
    public ReloadStatus Reload()
    {
        lock (_reloadLock)
        {
            var previous = _current;
            ReloadStatus status;
            if (Path is null)
            {
                var error = new ConfigError(0, "", "reload is unavailable: this configuration is embedded in the binary, not read from a file");
                ConfigLog.ReloadUnavailable(_logger, error.Message);
                status = new ReloadStatus(_time.GetUtcNow(), Ok: false, previous.Revision, [error]);
            }
            else
            {
                var result = ConfigLoader.LoadFile(Path, previous.Revision + 1, _time);
                var errors = result.Snapshot is { } valid ? Check?.Invoke(valid) ?? [] : result.Errors;
                if (result.Snapshot is { } next && errors.IsEmpty)
                {
                    _current = next;
                    Volatile.Read(ref _apply)?.Invoke(next);
                    status = new ReloadStatus(next.LoadedAt, Ok: true, next.Revision, []);
                    ConfigLog.ReloadApplied(_logger, Path, next.Revision);
                }
                else
                {
                    status = new ReloadStatus(_time.GetUtcNow(), Ok: false, previous.Revision, errors);
                    Report(Path, previous.Revision, errors);
                }
            }

            _lastReload = status;
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
