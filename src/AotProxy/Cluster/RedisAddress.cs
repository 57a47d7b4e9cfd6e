using System.Globalization;
using AotProxy.Configuration;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// [cluster].redis_url as the client connects to it: redis://[user:password@]host[:port][/db],
// rediss:// for TLS (the URL form Redis, Valkey and their clients document).
internal sealed record RedisAddress(string Host, int Port, string? User, string? Password, int Database, bool Tls)
{
    public const int DefaultPort = 6379;

    public static bool TryParse(string url, out RedisAddress address, out string error)
    {
        address = null!;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("redis" or "rediss") || uri.Host.Length == 0)
        {
            error = $"\"{ServiceUrl.Redacted(url)}\" is not a Redis URL; write redis://host:port (rediss:// for TLS)";
            return false;
        }

        var database = 0;
        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0 && (!int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out database) || database > 15))
        {
            error = $"the database in \"{ServiceUrl.Redacted(url)}\" must be a number from 0 to 15 (got \"{path}\")";
            return false;
        }

        if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            error = $"\"{ServiceUrl.Redacted(url)}\" has a query or fragment; only redis://[user:password@]host[:port][/db] is read";
            return false;
        }

        var (user, password) = ServiceUrl.Credentials(uri);
        if (password is null)
        {
            // redis://secret@host: the one part is the password (Redis before ACLs had no users).
            (user, password) = (null, user);
        }

        address = new RedisAddress(uri.IdnHost, uri.IsDefaultPort || uri.Port < 0 ? DefaultPort : uri.Port, user, password, database, uri.Scheme == "rediss");
        error = string.Empty;
        return true;
    }

    // The client's options: fail fast, never give up. A replica must start and serve while Redis
    // is down (AbortOnConnectFail false), notice an unreachable store within a heartbeat (1 s
    // timeouts) and find it again soon after it returns (a reconnect try every 500 ms).
    public ConfigurationOptions Options()
    {
        var options = new ConfigurationOptions
        {
            AbortOnConnectFail = false,
            ConnectTimeout = 1000,
            AsyncTimeout = 1000,
            SyncTimeout = 1000,
            ConnectRetry = 1,
            KeepAlive = 1,
            ReconnectRetryPolicy = new LinearRetry(500),
            DefaultDatabase = Database,
            User = User,
            Password = Password,
            Ssl = Tls,
            ClientName = "aotproxy",
        };
        options.EndPoints.Add(Host, Port);
        return options;
    }

    // For logs and /api/cluster: never the password.
    public override string ToString() => $"{(Tls ? "rediss" : "redis")}://{Host}:{Port.ToString(CultureInfo.InvariantCulture)}/{Database.ToString(CultureInfo.InvariantCulture)}";
}
