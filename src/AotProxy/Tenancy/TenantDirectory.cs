using System.Buffers.Text;
using System.Collections.Immutable;
using System.Security.Cryptography;
using AotProxy.Configuration;
using AotProxy.Configuration.Validation;
using AotProxy.Identity;
using AotProxy.Threading;
using Microsoft.Extensions.Logging;

namespace AotProxy.Tenancy;

// The tenants and keys of the tenant store, merged into the snapshot requests read. The config
// file's snapshot comes from ConfigStore (ApplyFile), the store's contents from the store; each
// change of either publishes one merged snapshot through GatewayState before the change answers,
// so a key issued or revoked holds from the next request on this replica, and the identify stage
// needs no lookup of its own. One lock orders file reloads and admin changes.
//
// File tenants and store tenants (docs/STORE.md "Tenants and keys"): a store tenant never takes a
// file tenant's name (409), a reload that adds a file tenant of a store tenant's name, or drops a
// class a store tenant uses, is rejected naming both, and a store tenant's class must exist. Keys
// may be issued to either kind; a file tenant's are edited in the file.
internal sealed class TenantDirectory : IAsyncDisposable
{
    // 5 s: "last used" is for an operator looking for unused keys, not an exact trail; one write
    // per interval for all keys together.
    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(5);

    // A shared store is read again at least this often when no change is announced (an
    // announcement lost with the listening connection); each time one query (Version) when
    // nothing changed.
    public static readonly TimeSpan RereadInterval = TimeSpan.FromSeconds(10);

    // After the store did not answer: the wait before the next try.
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private const int MaxLabelChars = 256;

    private readonly Lock _lock = new();
    private readonly ITenantStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<string, KeyUse> _uses = new(StringComparer.Ordinal); // under _lock
    private readonly BackgroundLoop _loops = new();
    private volatile StoreContents _contents; // written under _lock; its Version only grows
    private volatile string? _notReady; // written under _lock once the watch loop runs
    private GatewaySnapshot _file;
    private Action<GatewaySnapshot>? _apply;

    // Throws TenantStoreException when the store cannot be read.
    public TenantDirectory(ITenantStore store, GatewaySnapshot file, TimeProvider time, ILogger logger)
    {
        _store = store;
        _time = time;
        _logger = logger;
        _file = file;
        try
        {
            _contents = store.Load();
        }
        catch (TenantStoreException ex) when (store is ISharedTenantStore)
        {
            // A shared store down at startup: the replica starts on the file's tenants, not ready
            // (/ready 503), and the watch loop reads the store every RetryDelay until it answers.
            // Exiting instead would take the whole fleet down with Postgres on its next restart.
            _contents = StoreContents.Empty;
            _notReady = $"the tenant store ({store.Description}) has not been read yet: {ex.Message}";
            TenancyLog.NotRead(logger, ex, store.Description, RetryDelay.TotalSeconds);
            return;
        }

        var inUse = _contents.Keys.Count(k => !k.IsRevoked);
        TenancyLog.Opened(logger, store.Description, _contents.Tenants.Length, inUse);
    }

    public StoreContents Contents => _contents;

    // Why this replica is not ready (/ready answers 503 with it): a shared store not read since
    // startup, or in conflict with the file at that first read. null: ready.
    public string? NotReady => _notReady;

    // The snapshot to start on: the file's with the store's tenants and keys (the file's alone
    // while the store is not read). Throws TenantStoreException naming every conflict between the
    // two when the store was read.
    public GatewaySnapshot Initial()
    {
        var conflicts = Conflicts(_file);
        if (_notReady is null && !conflicts.IsEmpty)
        {
            throw new TenantStoreException(ConflictMessage(conflicts));
        }

        lock (_lock)
        {
            return Merge(_file, _contents);
        }
    }

    // Where each merged snapshot goes (GatewayState.Apply); then the last-use flush starts.
    public void AppliesTo(Action<GatewaySnapshot> apply)
    {
        _apply = apply;
        _loops.Start(FlushLoopAsync);
        if (_store is ISharedTenantStore shared)
        {
            _loops.Start(stop => WatchLoopAsync(shared, stop));
        }
    }

    // ConfigStore's check of a reload: what the new file would break in the store. Empty: none.
    public ImmutableArray<ConfigError> Conflicts(GatewaySnapshot file) => Conflicts(file, _contents);

    private ImmutableArray<ConfigError> Conflicts(GatewaySnapshot file, StoreContents contents)
    {
        var errors = ImmutableArray.CreateBuilder<ConfigError>();
        var storeNames = contents.Tenants.ToDictionary(t => t.Name, StringComparer.Ordinal);
        for (var i = 0; i < file.Tenants.Length; i++)
        {
            var name = file.Tenants[i].Name;
            if (storeNames.TryGetValue(name, out var stored))
            {
                errors.Add(new ConfigError(0, $"tenants[{i}].name", $"tenant \"{name}\" is also a store tenant (created through the admin API at {Time(stored.CreatedMs)}); a name is the file's or the store's: delete one of them (aotproxy tenants delete {name}) or rename this one"));
            }
        }

        foreach (var tenant in contents.Tenants)
        {
            if (!file.ClassesByName.ContainsKey(tenant.Class))
            {
                errors.Add(new ConfigError(0, "classes", $"class \"{tenant.Class}\" is used by store tenant \"{tenant.Name}\" and this file does not define it; keep the class or move the tenant first (aotproxy tenants update {tenant.Name} --class ...)"));
            }
        }

        var issued = contents.Keys.Where(k => !k.IsRevoked).ToDictionary(k => Convert.ToHexStringLower(k.Sha256.AsSpan()), StringComparer.Ordinal);
        for (var i = 0; i < file.Tenants.Length; i++)
        {
            for (var k = 0; k < file.Tenants[i].ApiKeySha256.Length; k++)
            {
                if (issued.TryGetValue(Convert.ToHexStringLower(file.Tenants[i].ApiKeySha256[k].AsSpan()), out var key))
                {
                    errors.Add(new ConfigError(0, $"tenants[{i}].api_key_sha256[{k}]", $"is also key {key.Id} issued to tenant \"{key.Tenant}\" through the admin API; a key must identify one tenant"));
                }
            }
        }

        return errors.ToImmutable();
    }

    // A reload ConfigStore accepted (after Conflicts found none).
    public void ApplyFile(GatewaySnapshot file)
    {
        lock (_lock)
        {
            _file = file;
            _apply?.Invoke(Merge(file, _contents));
        }
    }

    // Reads the store again and publishes what it holds when it changed since the last read: the
    // changes other replicas made to a shared store. false: nothing newer. Throws
    // TenantStoreException when the store does not answer (nothing changes here).
    public bool Reload()
    {
        if (_notReady is not null)
        {
            return FirstRead();
        }

        // The reads outside _lock: an admin write holds it across its own store I/O, and waiting
        // for it here would stall the watch loop behind it. A read that an admin write on this
        // replica overtook is older than what that write published: dropped.
        if (_store.Version() <= _contents.Version)
        {
            return false;
        }

        var contents = _store.Load();
        lock (_lock)
        {
            if (contents.Version <= _contents.Version)
            {
                return false;
            }

            _contents = contents;
            _apply?.Invoke(Merge(_file, contents));
        }

        var inUse = contents.Keys.Count(k => !k.IsRevoked);
        TenancyLog.Reloaded(_logger, _store.Description, contents.Tenants.Length, inUse);
        return true;
    }

    // The store's first read after a startup that could not read it: published when it agrees
    // with the file, else the conflict is logged (once) and kept as the reason for /ready, and
    // the next read (within RetryDelay) checks again. Outside _lock as in Reload.
    private bool FirstRead()
    {
        var contents = _store.Load();
        lock (_lock)
        {
            var conflicts = Conflicts(_file, contents);
            if (!conflicts.IsEmpty)
            {
                var reason = ConflictMessage(conflicts);
                if (reason != _notReady)
                {
                    TenancyLog.Conflicting(_logger, reason);
                }

                _notReady = reason;
                return false;
            }

            _contents = contents;
            _apply?.Invoke(Merge(_file, contents));
            _notReady = null;
        }

        var inUse = contents.Keys.Count(k => !k.IsRevoked);
        TenancyLog.Opened(_logger, _store.Description, contents.Tenants.Length, inUse);
        return true;
    }

    public TenancyResult CreateTenant(StoredTenant tenant, string actor)
    {
        lock (_lock)
        {
            if (Refused() is { } refused)
            {
                return refused;
            }

            if (FileTenant(tenant.Name) is not null)
            {
                return new(TenancyOutcome.Conflict, $"Tenant '{tenant.Name}' is defined in the config file ({_file.Source}); a store tenant may not take its name.");
            }

            if (_contents.Tenants.Any(t => t.Name == tenant.Name))
            {
                return new(TenancyOutcome.Conflict, $"Tenant '{tenant.Name}' exists already; change it with PATCH /api/tenants/{tenant.Name}.");
            }

            if (Invalid(tenant) is { } invalid)
            {
                return invalid;
            }

            return Write("tenant.create", tenant.Name, actor, tenant.Describe(), audit => _store.InsertTenant(tenant, audit)
                ? TenancyResult.Done
                : new(TenancyOutcome.Conflict, $"Tenant '{tenant.Name}' exists already."));
        }
    }

    // change: the tenant as it is -> as it should be (its name and creation time are kept).
    public TenancyResult UpdateTenant(string name, Func<StoredTenant, StoredTenant> change, string actor)
    {
        lock (_lock)
        {
            if (Refused() is { } refused)
            {
                return refused;
            }

            if (_contents.Tenants.FirstOrDefault(t => t.Name == name) is not { } current)
            {
                return FileTenant(name) is not null
                    ? new(TenancyOutcome.Conflict, $"Tenant '{name}' is defined in the config file ({_file.Source}); change it there.")
                    : new(TenancyOutcome.NotFound, $"No tenant named '{name}' in the tenant store.");
            }

            var next = change(current) with { Name = name, CreatedMs = current.CreatedMs, UpdatedMs = NowMs() };
            if (Invalid(next) is { } invalid)
            {
                return invalid;
            }

            return Write("tenant.update", name, actor, next.Describe(), audit => _store.UpdateTenant(next, audit)
                ? TenancyResult.Done
                : new(TenancyOutcome.NotFound, $"No tenant named '{name}' in the tenant store."));
        }
    }

    // The tenant and its keys.
    public TenancyResult DeleteTenant(string name, string actor)
    {
        lock (_lock)
        {
            if (Refused() is { } refused)
            {
                return refused;
            }

            if (!_contents.Tenants.Any(t => t.Name == name))
            {
                return FileTenant(name) is not null
                    ? new(TenancyOutcome.Conflict, $"Tenant '{name}' is defined in the config file ({_file.Source}); remove it there.")
                    : new(TenancyOutcome.NotFound, $"No tenant named '{name}' in the tenant store.");
            }

            var keys = _contents.Keys.Count(k => k.Tenant == name && !k.IsRevoked);
            return Write("tenant.delete", name, actor, $"with {keys} keys in use", audit => _store.DeleteTenant(name, audit)
                ? TenancyResult.Done
                : new(TenancyOutcome.NotFound, $"No tenant named '{name}' in the tenant store."));
        }
    }

    // A new key for the tenant (the file's or the store's), shown once in `issued`.
    public TenancyResult IssueKey(string tenant, string label, DateTimeOffset? expiresAt, KeyWindow window, string actor, out IssuedSecret? issued)
    {
        issued = null;
        lock (_lock)
        {
            if (Refused() is { } refused)
            {
                return refused;
            }

            if (CheckKeyInput(tenant, label, expiresAt) is { } invalid)
            {
                return invalid;
            }

            var key = NewKey(tenant, label, expiresAt?.ToUnixTimeMilliseconds(), window, out var secret);
            var result = Write("key.issue", $"{tenant}/{key.Id}", actor, Describe(key), audit => _store.InsertKey(key, audit)
                ? TenancyResult.Done
                : new(TenancyOutcome.Conflict, "A key with the same id was issued at the same time; issue it again."));
            issued = result.IsDone ? new IssuedSecret(key, secret) : null;
            return result;
        }
    }

    public TenancyResult RevokeKey(string tenant, string id, string actor)
    {
        lock (_lock)
        {
            if (Refused() is { } refused)
            {
                return refused;
            }

            if (UnrevokedKey(tenant, id) is null)
            {
                return new(TenancyOutcome.NotFound, $"Tenant '{tenant}' has no key '{id}' in use.");
            }

            return Write("key.revoke", $"{tenant}/{id}", actor, "", audit => _store.RevokeKey(tenant, id, NowMs(), audit)
                ? TenancyResult.Done
                : new(TenancyOutcome.NotFound, $"Tenant '{tenant}' has no key '{id}' in use."));
        }
    }

    // A new key like the old one (its label unless one is given, expiry and window); the old one
    // stays valid until validUntil.
    public TenancyResult RotateKey(string tenant, string id, DateTimeOffset validUntil, string? label, string actor, out IssuedSecret? issued)
    {
        issued = null;
        lock (_lock)
        {
            if (Refused() is { } refused)
            {
                return refused;
            }

            if (UnrevokedKey(tenant, id) is not { } old)
            {
                return new(TenancyOutcome.NotFound, $"Tenant '{tenant}' has no key '{id}' in use.");
            }

            if (validUntil.ToUnixTimeMilliseconds() < NowMs())
            {
                return new(TenancyOutcome.Invalid, $"valid_until {validUntil:O} is in the past; the old key's last moment must be now or later.");
            }

            var expiresAt = old.ExpiresAtMs is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
            if (CheckKeyInput(tenant, label ?? old.Label, expiresAt) is { } invalid)
            {
                return invalid;
            }

            var key = NewKey(tenant, label ?? old.Label, old.ExpiresAtMs, old.Window, out var secret);
            var until = validUntil.ToUnixTimeMilliseconds();
            var result = Write("key.rotate", $"{tenant}/{id}", actor, $"new key {key.Id}; {id} valid until {Time(until)}", audit => _store.RotateKey(tenant, id, until, key, audit)
                ? TenancyResult.Done
                : new(TenancyOutcome.NotFound, $"Tenant '{tenant}' has no key '{id}' in use."));
            issued = result.IsDone ? new IssuedSecret(key, secret) : null;
            return result;
        }
    }

    // The audit row of an admin change outside the store (worker.drain, worker.undrain,
    // breaker.reset, config.reload): written or logged, never failing the change, which is made.
    public void Record(string action, string target, string actor, string detail)
    {
        try
        {
            _store.AppendAudit(new AuditEntry(NowMs(), actor, action, target, detail));
            TenancyLog.Changed(_logger, actor, action, target);
        }
        catch (TenantStoreException ex)
        {
            TenancyLog.Unavailable(_logger, ex, _store.Description, action, target);
        }
    }

    // The last use of each key as this replica saw it (the store's, or a newer one in memory).
    public long? LastUsed(StoredKey key)
    {
        lock (_lock)
        {
            var seen = _uses.TryGetValue(key.Id, out var use) ? use.LastUsedSecond : 0;
            var last = Math.Max(seen, key.LastUsedSecond ?? 0);
            return last == 0 ? null : last;
        }
    }

    public IReadOnlyList<AuditEntry> ReadAudit(DateTimeOffset since, int limit) => _store.ReadAudit(since.ToUnixTimeMilliseconds(), limit);

    // Writes the keys' last use that changed since the previous flush.
    public void Flush()
    {
        List<(string Id, long Second)> changed;
        lock (_lock)
        {
            changed = [.. _uses.Select(u => (u.Key, u.Value.TakeUnflushed())).Where(u => u.Item2 > 0)];
        }

        if (changed.Count == 0)
        {
            return;
        }

        try
        {
            _store.WriteLastUsed(changed);
        }
        catch (TenantStoreException ex)
        {
            TenancyLog.FlushFailed(_logger, ex, changed.Count);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
        Flush();
        _store.Dispose();
    }

    private async Task FlushLoopAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(FlushInterval, _time);
        while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
        {
            Flush();
        }
    }

    // Another replica's change reaches this one when the store announces it, or within
    // RereadInterval if the announcement is lost.
    private async Task WatchLoopAsync(ISharedTenantStore store, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                // Not ready: read again every RetryDelay until the store answers and agrees.
                await store.WaitForChangeAsync(_notReady is null ? RereadInterval : RetryDelay, stop).ConfigureAwait(false);

                // Off to the thread pool: the wait ends on the epoll thread that read the
                // announcement (inline socket completions, Gateway/EventLoop.cs), and Reload blocks
                // on synchronous store reads. A blocked epoll thread stalls every socket it serves,
                // among them an admin write's own read of the store, which waited 30 s (Npgsql's
                // command timeout) while this loop waited for the write's _lock: the hang of
                // SharedTenantStoreTests, 1 run in 15.
                await Task.Yield();
                Reload();
            }
            catch (TenantStoreException ex)
            {
                TenancyLog.WatchFailed(_logger, ex, _store.Description, RetryDelay.TotalSeconds);
                await Task.Delay(RetryDelay, _time, stop).ConfigureAwait(false);
            }
        }
    }

    // The change, its audit row, then the store read back and published, under _lock.
    private TenancyResult Write(string action, string target, string actor, string detail, Func<AuditEntry, TenancyResult> change)
    {
        var audit = new AuditEntry(NowMs(), actor, action, target, detail);
        try
        {
            var result = change(audit);
            if (!result.IsDone)
            {
                return result;
            }
        }
        catch (TenantStoreException ex)
        {
            TenancyLog.Unavailable(_logger, ex, _store.Description, action, target);
            return new(TenancyOutcome.Unavailable, $"The tenant store ({_store.Description}) did not answer; nothing was changed: {ex.Message}");
        }

        TenancyLog.Changed(_logger, actor, action, target);
        try
        {
            // With its Version: this replica's own change, announced back to it, is no change to
            // read again.
            _contents = _store.Load();
        }
        catch (TenantStoreException ex)
        {
            // Made (committed with its audit row), only not read back: answered as made, so an
            // issued key's secret is shown, not lost. It is served from the next read that
            // answers (a shared store's watch loop reads on the change's own announcement).
            TenancyLog.NotReadBack(_logger, ex, _store.Description, action, target);
            return TenancyResult.Done;
        }

        _apply?.Invoke(Merge(_file, _contents));
        return TenancyResult.Done;
    }

    // The file's snapshot with the store's tenants and unrevoked keys; under _lock.
    private GatewaySnapshot Merge(GatewaySnapshot file, StoreContents contents)
    {
        // A reload checked against the store (Conflicts) may race a create of the same name
        // between its check and this merge: the file's tenant wins, and the store's waits, logged,
        // until one of them goes. A snapshot never holds one name twice.
        var fileNames = file.Tenants.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var shadowed = contents.Tenants.Where(t => fileNames.Contains(t.Name)).ToList();
        foreach (var tenant in shadowed)
        {
            TenancyLog.Shadowed(_logger, tenant.Name);
        }

        var tenants = Models(file, shadowed.Count == 0 ? contents.Tenants : contents.Tenants.Except(shadowed), out _);
        var issued = new List<IssuedKey>();
        var live = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in contents.Keys)
        {
            if (key.IsRevoked)
            {
                continue;
            }

            if (!_uses.TryGetValue(key.Id, out var use))
            {
                _uses[key.Id] = use = new KeyUse(key.LastUsedSecond ?? 0);
            }

            live.Add(key.Id);
            issued.Add(new IssuedKey(key.Id, key.Sha256, key.Tenant, key.NotAfterMs, key.Window, use));
        }

        foreach (var gone in _uses.Keys.Where(id => !live.Contains(id)).ToList())
        {
            _uses.Remove(gone);
        }

        return GatewaySnapshotFactory.WithStore(file, tenants, issued);
    }

    // The store's tenants as the file's would be (TenantRules: the same checks, the same model).
    private static ImmutableArray<TenantModel> Models(GatewaySnapshot file, IEnumerable<StoredTenant> tenants, out ValidationContext context)
    {
        context = new ValidationContext(file.Source);
        return TenantRules.Validate(context, [.. tenants.Select(t => t.ToConfig())], file.Classes, implicitClasses: file.Classes is [{ Name: ClassModel.DefaultName }]);
    }

    private TenancyResult? Invalid(StoredTenant tenant)
    {
        Models(_file, [tenant], out var context);
        return context.HasErrors
            ? new(TenancyOutcome.Invalid, string.Join("; ", context.Messages().Select(m => m.Replace("tenants[0].", "", StringComparison.Ordinal))))
            : null;
    }

    private TenancyResult? CheckKeyInput(string tenant, string label, DateTimeOffset? expiresAt)
    {
        if (FileTenant(tenant) is null && !_contents.Tenants.Any(t => t.Name == tenant))
        {
            return new(TenancyOutcome.NotFound, $"No tenant named '{tenant}'.");
        }

        if (label.Length > MaxLabelChars)
        {
            return new(TenancyOutcome.Invalid, $"label: at most {MaxLabelChars} characters (got {label.Length}).");
        }

        if (expiresAt is { } at && at.ToUnixTimeMilliseconds() <= NowMs())
        {
            return new(TenancyOutcome.Invalid, $"expires_at {at:O} is not in the future.");
        }

        return null;
    }

    // Before the store's first read no change is made: what it holds is not known here.
    private TenancyResult? Refused() => _notReady is { } reason
        ? new(TenancyOutcome.Unavailable, $"Nothing was changed: {reason}.")
        : null;

    private string ConflictMessage(ImmutableArray<ConfigError> conflicts) =>
        $"the config file and {_store.Description} conflict: {string.Join("; ", conflicts)}";

    private StoredKey? UnrevokedKey(string tenant, string id) =>
        _contents.Keys.FirstOrDefault(k => k.Tenant == tenant && k.Id == id && !k.IsRevoked);

    private TenantModel? FileTenant(string name) => _file.Tenants.FirstOrDefault(t => t.Name == name);

    // "sk-" and 24 random bytes (192 bits) in base64url. Its id, the first 8 hex digits of its
    // SHA-256, is unique among every key the store and the file hold (a clash, 1 in 4 billion per
    // pair, draws another key), so the ledger's key_id names one key.
    private StoredKey NewKey(string tenant, string label, long? expiresAtMs, KeyWindow window, out string secret)
    {
        var taken = _contents.Keys.Select(k => k.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var fileTenant in _file.Tenants)
        {
            foreach (var hash in fileTenant.ApiKeySha256)
            {
                taken.Add(ApiKeyIndex.KeyIdOf(hash.AsSpan()));
            }
        }

        while (true)
        {
            secret = "sk-" + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(24));
            var digest = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret));
            var id = ApiKeyIndex.KeyIdOf(digest);
            if (!taken.Contains(id))
            {
                return new StoredKey(id, tenant, [.. digest], label, NowMs(), expiresAtMs, window, null, null, null);
            }
        }
    }

    private static string Describe(StoredKey key) =>
        $"label={key.Label} expires_at={(key.ExpiresAtMs is { } at ? Time(at) : "never")} window={(key.Window.IsAlways ? "always" : key.Window.ToString())}";

    private static string Time(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();
}
