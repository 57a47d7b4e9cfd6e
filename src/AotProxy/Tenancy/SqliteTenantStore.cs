using System.Collections.Immutable;
using AotProxy.Ledger;
using Microsoft.Data.Sqlite;

namespace AotProxy.Tenancy;

// The tenant store in the SQLite file the gateway already keeps (ledger.path): three tables beside
// the ledger's, so one binary needs nothing else. One connection, its calls serialised: admin
// writes are rare, and the ledger's writer has its own connection (WAL: neither blocks the other's
// readers).
internal sealed class SqliteTenantStore : ITenantStore
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS tenants (
            name                  TEXT    PRIMARY KEY,
            class                 TEXT    NOT NULL,
            weight                INTEGER NOT NULL,
            models                TEXT    NOT NULL,  -- JSON array of names; "*" = all
            rpm                   INTEGER NOT NULL,
            tpm                   INTEGER NOT NULL,
            max_in_flight         INTEGER NOT NULL,
            budget_tokens         INTEGER NOT NULL,
            monthly_budget_tokens INTEGER NOT NULL,
            budget_usd            REAL    NOT NULL,
            monthly_budget_usd    REAL    NOT NULL,
            environment           TEXT    NOT NULL,
            created               INTEGER NOT NULL,  -- Unix milliseconds (UTC)
            updated               INTEGER NOT NULL,
            cache_salt            INTEGER,           -- 0/1; null: the class's
            stream_budget_cutoff  INTEGER NOT NULL DEFAULT 0,
            response_cache        INTEGER NOT NULL DEFAULT 0
        );
        -- Never the key: its SHA-256. id = the first 8 hex digits of it (the ledger's key_id).
        CREATE TABLE IF NOT EXISTS api_keys (
            id           TEXT    PRIMARY KEY,
            tenant       TEXT    NOT NULL,
            sha256       BLOB    NOT NULL UNIQUE,
            label        TEXT    NOT NULL,
            created      INTEGER NOT NULL,
            expires_at   INTEGER,                    -- null: never
            window_start INTEGER NOT NULL,           -- minutes of the day (UTC); start = end: always
            window_end   INTEGER NOT NULL,
            valid_until  INTEGER,                    -- set by a rotation: the old key's end
            revoked_at   INTEGER,
            last_used    INTEGER                     -- Unix seconds
        );
        CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant);
        CREATE TABLE IF NOT EXISTS audit (
            id     INTEGER PRIMARY KEY,
            at     INTEGER NOT NULL,
            actor  TEXT    NOT NULL,                 -- the admin token's id
            action TEXT    NOT NULL,
            target TEXT    NOT NULL,
            detail TEXT    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
        """;

    private readonly Lock _lock = new();
    private readonly SqliteConnection _connection;

    private SqliteTenantStore(SqliteConnection connection, string path)
    {
        _connection = connection;
        Description = $"the SQLite file {path}";
    }

    public string Description { get; }

    public static SqliteTenantStore Open(string path)
    {
        SqliteConnection? connection = null;
        try
        {
            connection = LedgerDatabase.Open(path, create: true);
            using var command = connection.CreateCommand();
            command.CommandText = Schema;
            command.ExecuteNonQuery();
            Migrate(connection);
            return new SqliteTenantStore(connection, path);
        }
        catch (SqliteException ex)
        {
            connection?.Dispose();
            throw new TenantStoreException($"the tenant store in {path} cannot be opened: {ex.Message}", ex);
        }
    }

    // A tenants table made before issue 20 lacks its two columns, and one made before issue 21's
    // response_cache that one: added with the defaults a [[tenants]] entry without the keys has.
    private static void Migrate(SqliteConnection connection)
    {
        LedgerDatabase.EnsureColumn(connection, "tenants", "cache_salt", "INTEGER");
        LedgerDatabase.EnsureColumn(connection, "tenants", "stream_budget_cutoff", "INTEGER NOT NULL DEFAULT 0");
        LedgerDatabase.EnsureColumn(connection, "tenants", "response_cache", "INTEGER NOT NULL DEFAULT 0");
    }

    // Run's lock orders it with every change this process makes (the file is this replica's own).
    public StoreContents Load() => Run(() =>
    {
        var version = ReadVersion();
        var tenants = ImmutableArray.CreateBuilder<StoredTenant>();
        using (var command = _connection.CreateCommand())
        {
            command.CommandText = """
                SELECT name, class, weight, models, rpm, tpm, max_in_flight, budget_tokens, monthly_budget_tokens,
                       budget_usd, monthly_budget_usd, environment, created, updated, cache_salt, stream_budget_cutoff, response_cache
                FROM tenants ORDER BY name
                """;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                tenants.Add(StoredTenant.Read(reader));
            }
        }

        var keys = ImmutableArray.CreateBuilder<StoredKey>();
        using (var command = _connection.CreateCommand())
        {
            command.CommandText = """
                SELECT id, tenant, sha256, label, created, expires_at, window_start, window_end, valid_until, revoked_at, last_used
                FROM api_keys ORDER BY tenant, created, rowid
                """;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                keys.Add(StoredKey.Read(reader));
            }
        }

        return new StoreContents(tenants.ToImmutable(), keys.ToImmutable(), version);
    });

    public long Version() => Run(ReadVersion);

    public bool InsertTenant(StoredTenant tenant, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = """
            INSERT OR IGNORE INTO tenants (name, class, weight, models, rpm, tpm, max_in_flight, budget_tokens, monthly_budget_tokens,
                                           budget_usd, monthly_budget_usd, environment, created, updated, cache_salt, stream_budget_cutoff, response_cache)
            VALUES ($name, $class, $weight, $models, $rpm, $tpm, $max_in_flight, $budget_tokens, $monthly_budget_tokens,
                    $budget_usd, $monthly_budget_usd, $environment, $created, $updated, $cache_salt, $stream_budget_cutoff, $response_cache)
            """;
        BindTenant(command, tenant);
        return command.ExecuteNonQuery() == 1;
    });

    public bool UpdateTenant(StoredTenant tenant, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = """
            UPDATE tenants SET class = $class, weight = $weight, models = $models, rpm = $rpm, tpm = $tpm, max_in_flight = $max_in_flight,
                               budget_tokens = $budget_tokens, monthly_budget_tokens = $monthly_budget_tokens, budget_usd = $budget_usd,
                               monthly_budget_usd = $monthly_budget_usd, environment = $environment, updated = $updated,
                               cache_salt = $cache_salt, stream_budget_cutoff = $stream_budget_cutoff, response_cache = $response_cache
            WHERE name = $name
            """;
        BindTenant(command, tenant);
        return command.ExecuteNonQuery() == 1;
    });

    public bool DeleteTenant(string name, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = "DELETE FROM api_keys WHERE tenant = $name; DELETE FROM tenants WHERE name = $name";
        command.Parameters.AddWithValue("$name", name);
        command.ExecuteNonQuery();
        command.CommandText = "SELECT changes()";
        command.Parameters.Clear();
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 1;
    });

    public bool InsertKey(StoredKey key, AuditEntry audit) => Change(audit, command => Insert(command, key));

    public bool RevokeKey(string tenant, string id, long revokedAtMs, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = "UPDATE api_keys SET revoked_at = $at WHERE id = $id AND tenant = $tenant AND revoked_at IS NULL";
        command.Parameters.AddWithValue("$at", revokedAtMs);
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$tenant", tenant);
        return command.ExecuteNonQuery() == 1;
    });

    public bool RotateKey(string tenant, string oldId, long validUntilMs, StoredKey next, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = "UPDATE api_keys SET valid_until = $until WHERE id = $id AND tenant = $tenant AND revoked_at IS NULL";
        command.Parameters.AddWithValue("$until", validUntilMs);
        command.Parameters.AddWithValue("$id", oldId);
        command.Parameters.AddWithValue("$tenant", tenant);
        if (command.ExecuteNonQuery() != 1)
        {
            return false;
        }

        command.Parameters.Clear();
        return Insert(command, next);
    });

    public void AppendAudit(AuditEntry audit) => Change(audit, _ => true);

    public void WriteLastUsed(IReadOnlyList<(string Id, long Second)> uses) => Run(() =>
    {
        using var transaction = _connection.BeginTransaction();
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "UPDATE api_keys SET last_used = $second WHERE id = $id AND (last_used IS NULL OR last_used < $second)";
        var id = command.Parameters.Add("$id", SqliteType.Text);
        var second = command.Parameters.Add("$second", SqliteType.Integer);
        foreach (var use in uses)
        {
            id.Value = use.Id;
            second.Value = use.Second;
            command.ExecuteNonQuery();
        }

        transaction.Commit();
        return 0;
    });

    public IReadOnlyList<AuditEntry> ReadAudit(long sinceMs, int limit) => Run(() =>
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT at, actor, action, target, detail FROM audit WHERE at >= $since ORDER BY id DESC LIMIT $limit";
        command.Parameters.AddWithValue("$since", sinceMs);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = command.ExecuteReader();
        var rows = new List<AuditEntry>();
        while (reader.Read())
        {
            rows.Add(new AuditEntry(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4)));
        }

        return rows;
    });

    public void Dispose() => _connection.Dispose();

    private static bool Insert(SqliteCommand command, StoredKey key)
    {
        command.CommandText = """
            INSERT OR IGNORE INTO api_keys (id, tenant, sha256, label, created, expires_at, window_start, window_end, valid_until, revoked_at, last_used)
            VALUES ($id, $tenant, $sha256, $label, $created, $expires_at, $window_start, $window_end, NULL, NULL, NULL)
            """;
        command.Parameters.AddWithValue("$id", key.Id);
        command.Parameters.AddWithValue("$tenant", key.Tenant);
        command.Parameters.AddWithValue("$sha256", key.Sha256.ToArray());
        command.Parameters.AddWithValue("$label", key.Label);
        command.Parameters.AddWithValue("$created", key.CreatedMs);
        command.Parameters.AddWithValue("$expires_at", (object?)key.ExpiresAtMs ?? DBNull.Value);
        command.Parameters.AddWithValue("$window_start", (int)key.Window.StartMinute);
        command.Parameters.AddWithValue("$window_end", (int)key.Window.EndMinute);
        return command.ExecuteNonQuery() == 1;
    }

    private static void BindTenant(SqliteCommand command, StoredTenant tenant)
    {
        command.Parameters.AddWithValue("$name", tenant.Name);
        command.Parameters.AddWithValue("$class", tenant.Class);
        command.Parameters.AddWithValue("$weight", tenant.Weight);
        command.Parameters.AddWithValue("$models", tenant.ModelsJson());
        command.Parameters.AddWithValue("$rpm", tenant.Rpm);
        command.Parameters.AddWithValue("$tpm", tenant.Tpm);
        command.Parameters.AddWithValue("$max_in_flight", tenant.MaxInFlight);
        command.Parameters.AddWithValue("$budget_tokens", tenant.BudgetTokens);
        command.Parameters.AddWithValue("$monthly_budget_tokens", tenant.MonthlyBudgetTokens);
        command.Parameters.AddWithValue("$budget_usd", tenant.BudgetUsd);
        command.Parameters.AddWithValue("$monthly_budget_usd", tenant.MonthlyBudgetUsd);
        command.Parameters.AddWithValue("$environment", tenant.Environment);
        command.Parameters.AddWithValue("$created", tenant.CreatedMs);
        command.Parameters.AddWithValue("$updated", tenant.UpdatedMs);
        command.Parameters.AddWithValue("$cache_salt", (object?)tenant.CacheSalt ?? DBNull.Value);
        command.Parameters.AddWithValue("$stream_budget_cutoff", tenant.StreamBudgetCutoff);
        command.Parameters.AddWithValue("$response_cache", tenant.ResponseCache);
    }

    // The change and its audit row in one transaction: kept together or not at all.
    private bool Change(AuditEntry audit, Func<SqliteCommand, bool> change) => Run(() =>
    {
        using var transaction = _connection.BeginTransaction();
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        if (!change(command))
        {
            return false;
        }

        command.Parameters.Clear();
        command.CommandText = "INSERT INTO audit (at, actor, action, target, detail) VALUES ($at, $actor, $action, $target, $detail)";
        command.Parameters.AddWithValue("$at", audit.AtMs);
        command.Parameters.AddWithValue("$actor", audit.Actor);
        command.Parameters.AddWithValue("$action", audit.Action);
        command.Parameters.AddWithValue("$target", audit.Target);
        command.Parameters.AddWithValue("$detail", audit.Detail);
        command.ExecuteNonQuery();
        transaction.Commit();
        return true;
    });

    private long ReadVersion()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM audit"; // ITenantStore.Version
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private T Run<T>(Func<T> work)
    {
        lock (_lock)
        {
            try
            {
                return work();
            }
            catch (SqliteException ex)
            {
                throw new TenantStoreException($"{Description} cannot be used: {ex.Message}", ex);
            }
        }
    }
}
