using System.Globalization;
using AotProxy.Configuration;
using Npgsql;

namespace AotProxy.Store;

// [store].postgres_url as the client connects to it: postgres://[user[:password]@]host[:port]/database
// (postgresql:// too), with an optional ?sslmode=disable|prefer|require|verify-ca|verify-full: the
// URL form libpq documents, so the same string works with psql.
internal sealed record PostgresAddress(string Host, int Port, string? User, string? Password, string Database, SslMode SslMode)
{
    public const int DefaultPort = 5432;

    public static bool TryParse(string url, out PostgresAddress address, out string error)
    {
        address = null!;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("postgres" or "postgresql") || uri.Host.Length == 0)
        {
            error = $"\"{ServiceUrl.Redacted(url)}\" is not a PostgreSQL URL; write postgres://user:password@host:port/database";
            return false;
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/'));
        if (database.Length == 0 || database.Contains('/', StringComparison.Ordinal))
        {
            error = $"\"{ServiceUrl.Redacted(url)}\" names no database; write postgres://host:port/database";
            return false;
        }

        var sslMode = SslMode.Prefer; // libpq's default
        var query = uri.Query.TrimStart('?');
        if (query.Length > 0)
        {
            if (!query.StartsWith("sslmode=", StringComparison.Ordinal) || query.Contains('&', StringComparison.Ordinal)
                || !TryParseSslMode(query["sslmode=".Length..], out sslMode))
            {
                error = $"\"{ServiceUrl.Redacted(url)}\": only ?sslmode=disable|prefer|require|verify-ca|verify-full is read";
                return false;
            }
        }

        if (uri.Fragment.Length > 0)
        {
            error = $"\"{ServiceUrl.Redacted(url)}\" has a fragment";
            return false;
        }

        var (user, password) = ServiceUrl.Credentials(uri);

        address = new PostgresAddress(uri.IdnHost, uri.IsDefaultPort || uri.Port < 0 ? DefaultPort : uri.Port, user, password, database, sslMode);
        error = string.Empty;
        return true;
    }

    // Fail fast: a replica notices an unreachable Postgres within a few seconds and spools to its
    // local ledger meanwhile (LedgerShipper); nothing on the request path waits for it.
    public string ConnectionString() => new NpgsqlConnectionStringBuilder
    {
        Host = Host,
        Port = Port,
        Username = User ?? "postgres",
        Password = Password,
        Database = Database,
        SslMode = SslMode,
        Timeout = 3,
        CommandTimeout = 30,
        ApplicationName = "aotproxy",
        // A small pool: the ledger's shipper, a usage report or two at a time.
        MaxPoolSize = 8,
    }.ToString();

    // For logs and errors: never the password.
    public override string ToString() => $"postgres://{(User is null ? string.Empty : User + "@")}{Host}:{Port.ToString(CultureInfo.InvariantCulture)}/{Database}";

    private static bool TryParseSslMode(string text, out SslMode mode)
    {
        mode = text switch
        {
            "disable" => SslMode.Disable,
            "prefer" => SslMode.Prefer,
            "require" => SslMode.Require,
            "verify-ca" => SslMode.VerifyCA,
            "verify-full" => SslMode.VerifyFull,
            _ => (SslMode)(-1),
        };
        return mode >= 0;
    }
}
