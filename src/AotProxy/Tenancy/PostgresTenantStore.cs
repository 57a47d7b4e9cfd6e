using System.Collections.Immutable;
using AotProxy.Store;
using Npgsql;

namespace AotProxy.Tenancy;

// The tenant store in the PostgreSQL database [store] postgres_url names, shared by every replica:
// SqliteTenantStore's three tables and contract, in Postgres types. Each call takes a pooled
// connection of its own (the data source is thread-safe), and each change is one transaction with
// its audit row, as in the file.
//
// Propagation: each change's transaction ends with NOTIFY on Channel, which PostgreSQL delivers to
// every listener when (and only if) the change commits; each replica listens on one connection of
// its own (WaitForChangeAsync). Postgres rather than the cluster's Redis: the announcement is part
// of the change's own commit (never one without the other), and it needs no [cluster].
internal sealed class PostgresTenantStore : ISharedTenantStore
{
    public const string Channel = "aotproxy_tenants";

    // pg_advisory_xact_lock's key: replicas starting together create the schema one at a time
    // (concurrent CREATE ... IF NOT EXISTS can fail on the catalog). PostgresLedger's is "LEDGER".
    private const long SchemaLock = 0x5445_4e41_4e54; // "TENANT"

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS tenants (
            name                  text             PRIMARY KEY,
            class                 text             NOT NULL,
            weight                integer          NOT NULL,
            models                text             NOT NULL,  -- JSON array of names; "*" = all
            rpm                   bigint           NOT NULL,
            tpm                   bigint           NOT NULL,
            max_in_flight         integer          NOT NULL,
            budget_tokens         bigint           NOT NULL,
            monthly_budget_tokens bigint           NOT NULL,
            budget_usd            double precision NOT NULL,
            monthly_budget_usd    double precision NOT NULL,
            environment           text             NOT NULL,
            created               bigint           NOT NULL,  -- Unix milliseconds (UTC)
            updated               bigint           NOT NULL,
            cache_salt            boolean,                    -- null: the class's
            stream_budget_cutoff  boolean          NOT NULL DEFAULT false,
            response_cache        boolean          NOT NULL DEFAULT false
        );
        -- A table made before issue 20: its tenants get the defaults of an entry without the keys.
        ALTER TABLE tenants ADD COLUMN IF NOT EXISTS cache_salt boolean;
        ALTER TABLE tenants ADD COLUMN IF NOT EXISTS stream_budget_cutoff boolean NOT NULL DEFAULT false;
        -- ... and before issue 21's response_cache: off, as an entry without the key.
        ALTER TABLE tenants ADD COLUMN IF NOT EXISTS response_cache boolean NOT NULL DEFAULT false;
        -- Never the key: its SHA-256. id = the first 8 hex digits of it (the ledger's key_id).
        CREATE TABLE IF NOT EXISTS api_keys (
            id           text    PRIMARY KEY,
            tenant       text    NOT NULL,
            sha256       bytea   NOT NULL UNIQUE,
            label        text    NOT NULL,
            created      bigint  NOT NULL,
            expires_at   bigint,                   -- null: never
            window_start integer NOT NULL,         -- minutes of the day (UTC); start = end: always
            window_end   integer NOT NULL,
            valid_until  bigint,                   -- set by a rotation: the old key's end
            revoked_at   bigint,
            last_used    bigint,                   -- Unix seconds
            -- Issue order: keys issued in one millisecond list as they were issued, not by their
            -- random ids (SqliteTenantStore's rowid).
            seq          bigint  GENERATED ALWAYS AS IDENTITY
        );
        -- A table made before seq: its rows are numbered in the order Postgres reads them.
        ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY;
        CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant);
        CREATE TABLE IF NOT EXISTS audit (
            id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at     bigint NOT NULL,
            actor  text   NOT NULL,                -- the admin token's id
            action text   NOT NULL,
            target text   NOT NULL,
            detail text   NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
        """;

    private const string VersionQuery = "SELECT count(*) FROM audit"; // ITenantStore.Version

    private readonly NpgsqlDataSource _source;

    // Set by the first call that reached the server (Run): the schema exists from then on.
    private volatile bool _schema;

    // The LISTEN connection: opened by the first wait, dropped (and opened again by the next) when
    // it fails. Only the watch loop uses it.
    private NpgsqlConnection? _listener;

    private PostgresTenantStore(NpgsqlDataSource source, PostgresAddress address)
    {
        _source = source;
        Description = $"the PostgreSQL database {address}";
    }

    public string Description { get; }

    // Connects at the first call, not here: a replica starts while Postgres is down
    // (TenantDirectory reads the store until it answers), and each call throws until then.
    public static PostgresTenantStore Open(PostgresAddress address) =>
        // The slim builder, as PostgresLedger's: no reflection, the AOT publish warns of none.
        new(new NpgsqlSlimDataSourceBuilder(address.ConnectionString()).Build(), address);

    public StoreContents Load() => Run(connection =>
    {
        // One snapshot of both tables: a change committed between two reads is in both or neither.
        using var transaction = connection.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);
        long version;
        using (var command = new NpgsqlCommand(VersionQuery, connection, transaction))
        {
            version = (long)command.ExecuteScalar()!;
        }

        var tenants = ImmutableArray.CreateBuilder<StoredTenant>();
        using (var command = new NpgsqlCommand(
            """
            SELECT name, class, weight, models, rpm, tpm, max_in_flight, budget_tokens, monthly_budget_tokens,
                   budget_usd, monthly_budget_usd, environment, created, updated, cache_salt, stream_budget_cutoff, response_cache
            FROM tenants ORDER BY name COLLATE "C"
            """, connection, transaction))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                tenants.Add(StoredTenant.Read(reader));
            }
        }

        var keys = ImmutableArray.CreateBuilder<StoredKey>();
        using (var command = new NpgsqlCommand(
            """
            SELECT id, tenant, sha256, label, created, expires_at, window_start, window_end, valid_until, revoked_at, last_used
            FROM api_keys ORDER BY tenant COLLATE "C", created, seq
            """, connection, transaction))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                keys.Add(StoredKey.Read(reader));
            }
        }

        transaction.Commit();
        return new StoreContents(tenants.ToImmutable(), keys.ToImmutable(), version);
    });

    public long Version() => Run(connection =>
    {
        using var command = new NpgsqlCommand(VersionQuery, connection);
        return (long)command.ExecuteScalar()!;
    });

    public async Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            if (_listener is null)
            {
                var listener = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    using var listen = new NpgsqlCommand($"LISTEN {Channel}", listener);
                    await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    await listener.DisposeAsync().ConfigureAwait(false);
                    throw;
                }

                _listener = listener;
                // Changes made while no connection listened are not announced: the caller reads
                // the store after this wait in any case.
                return true;
            }

            return await _listener.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or System.IO.IOException or InvalidOperationException)
        {
            await DropListenerAsync().ConfigureAwait(false);
            throw new TenantStoreException($"{Description} cannot be used: {ex.Message}", ex);
        }
        catch (OperationCanceledException)
        {
            await DropListenerAsync().ConfigureAwait(false);
            throw;
        }
    }

    public bool InsertTenant(StoredTenant tenant, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = """
            INSERT INTO tenants (name, class, weight, models, rpm, tpm, max_in_flight, budget_tokens, monthly_budget_tokens,
                                 budget_usd, monthly_budget_usd, environment, created, updated, cache_salt, stream_budget_cutoff, response_cache)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
            ON CONFLICT DO NOTHING
            """;
        BindTenant(command, tenant);
        return command.ExecuteNonQuery() == 1;
    });

    public bool UpdateTenant(StoredTenant tenant, AuditEntry audit) => Change(audit, command =>
    {
        // $13 (created) is bound with the rest (typed: PostgreSQL accepts it unused) and left as it is.
        command.CommandText = """
            UPDATE tenants SET class = $2, weight = $3, models = $4, rpm = $5, tpm = $6, max_in_flight = $7, budget_tokens = $8,
                               monthly_budget_tokens = $9, budget_usd = $10, monthly_budget_usd = $11, environment = $12, updated = $14,
                               cache_salt = $15, stream_budget_cutoff = $16, response_cache = $17
            WHERE name = $1
            """;
        BindTenant(command, tenant);
        return command.ExecuteNonQuery() == 1;
    });

    public bool DeleteTenant(string name, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = "DELETE FROM api_keys WHERE tenant = $1";
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
        command.ExecuteNonQuery();
        command.CommandText = "DELETE FROM tenants WHERE name = $1";
        return command.ExecuteNonQuery() == 1;
    });

    public bool InsertKey(StoredKey key, AuditEntry audit) => Change(audit, command => Insert(command, key));

    public bool RevokeKey(string tenant, string id, long revokedAtMs, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant = $3 AND revoked_at IS NULL";
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = revokedAtMs });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant });
        return command.ExecuteNonQuery() == 1;
    });

    public bool RotateKey(string tenant, string oldId, long validUntilMs, StoredKey next, AuditEntry audit) => Change(audit, command =>
    {
        command.CommandText = "UPDATE api_keys SET valid_until = $1 WHERE id = $2 AND tenant = $3 AND revoked_at IS NULL";
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = validUntilMs });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = oldId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant });
        if (command.ExecuteNonQuery() != 1)
        {
            return false;
        }

        command.Parameters.Clear();
        return Insert(command, next);
    });

    // Not announced: nothing other replicas serve changed.
    public void AppendAudit(AuditEntry audit) => Change(audit, _ => true, announce: false);

    public void WriteLastUsed(IReadOnlyList<(string Id, long Second)> uses) => Run(connection =>
    {
        using var transaction = connection.BeginTransaction();
        using var command = new NpgsqlCommand("UPDATE api_keys SET last_used = $2 WHERE id = $1 AND (last_used IS NULL OR last_used < $2)", connection, transaction);
        var id = new NpgsqlParameter<string>();
        var second = new NpgsqlParameter<long>();
        command.Parameters.Add(id);
        command.Parameters.Add(second);
        foreach (var use in uses)
        {
            id.TypedValue = use.Id;
            second.TypedValue = use.Second;
            command.ExecuteNonQuery();
        }

        transaction.Commit();
        return 0;
    });

    public IReadOnlyList<AuditEntry> ReadAudit(long sinceMs, int limit) => Run(connection =>
    {
        using var command = new NpgsqlCommand("SELECT at, actor, action, target, detail FROM audit WHERE at >= $1 ORDER BY id DESC LIMIT $2", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = sinceMs });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        using var reader = command.ExecuteReader();
        var rows = new List<AuditEntry>();
        while (reader.Read())
        {
            rows.Add(new AuditEntry(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4)));
        }

        return rows;
    });

    public void Dispose()
    {
        _listener?.Dispose();
        _source.Dispose();
    }

    private static NpgsqlParameter<long?> NullableParameter(long? value) => new() { TypedValue = value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint };

    private static bool Insert(NpgsqlCommand command, StoredKey key)
    {
        command.CommandText = """
            INSERT INTO api_keys (id, tenant, sha256, label, created, expires_at, window_start, window_end, valid_until, revoked_at, last_used)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL)
            ON CONFLICT DO NOTHING
            """;
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Id });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Tenant });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = key.Sha256.ToArray() });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Label });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = key.CreatedMs });
        command.Parameters.Add(NullableParameter(key.ExpiresAtMs));
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = key.Window.StartMinute });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = key.Window.EndMinute });
        return command.ExecuteNonQuery() == 1;
    }

    private static void BindTenant(NpgsqlCommand command, StoredTenant tenant)
    {
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant.Name });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant.Class });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = tenant.Weight });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant.ModelsJson() });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = tenant.Rpm });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = tenant.Tpm });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = tenant.MaxInFlight });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = tenant.BudgetTokens });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = tenant.MonthlyBudgetTokens });
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = tenant.BudgetUsd });
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = tenant.MonthlyBudgetUsd });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant.Environment });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = tenant.CreatedMs });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = tenant.UpdatedMs });
        command.Parameters.Add(new NpgsqlParameter<bool?> { TypedValue = tenant.CacheSalt, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Boolean });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = tenant.StreamBudgetCutoff });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = tenant.ResponseCache });
    }

    // The change and its audit row in one transaction: kept together or not at all.
    private bool Change(AuditEntry audit, Func<NpgsqlCommand, bool> change, bool announce = true) => Run(connection =>
    {
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        if (!change(command))
        {
            return false;
        }

        command.Parameters.Clear();
        command.CommandText = "INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)";
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = audit.AtMs });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = audit.Actor });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = audit.Action });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = audit.Target });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = audit.Detail });
        command.ExecuteNonQuery();
        if (announce)
        {
            command.Parameters.Clear();
            command.CommandText = $"NOTIFY {Channel}";
            command.ExecuteNonQuery();
        }

        transaction.Commit();
        return true;
    });

    private async ValueTask DropListenerAsync()
    {
        if (_listener is { } listener)
        {
            _listener = null;
            await listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static void CreateSchema(NpgsqlConnection connection)
    {
        using var transaction = connection.BeginTransaction();
        using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = SchemaLock });
            command.ExecuteNonQuery();
        }

        using (var command = new NpgsqlCommand(Schema, connection, transaction))
        {
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    private T Run<T>(Func<NpgsqlConnection, T> work)
    {
        try
        {
            using var connection = _source.OpenConnection();
            if (!_schema)
            {
                CreateSchema(connection);
                _schema = true;
            }

            return work(connection);
        }
        catch (NpgsqlException ex)
        {
            throw new TenantStoreException($"{Description} cannot be used: {ex.Message}", ex);
        }
    }
}
