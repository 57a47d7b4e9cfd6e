using System.Net;
using AotProxy.Hosting;

namespace AotProxy.Configuration.Validation;

// [server]: the listeners, the admin token and the request caps.
internal static class ServerRules
{
    public static ServerModel Validate(ValidationContext context, ServerConfig server)
    {
        context.Unknown("server", server.Unknown);
        var listen = context.EndPoint("server.listen", server.Listen);
        var admin = context.EndPoint("server.admin_listen", server.AdminListen);
        if (listen is not null && admin is not null && listen.Port != 0 && listen.Equals(admin))
        {
            context.Error("server.admin_listen", $"\"{server.AdminListen}\" is also server.listen; the admin plane needs its own port");
        }

        var h2c = server.H2cListen.Length == 0 ? null : context.EndPoint("server.h2c_listen", server.H2cListen);
        if (h2c is not null && h2c.Port != 0 && (h2c.Equals(listen) || h2c.Equals(admin)))
        {
            context.Error("server.h2c_listen", $"\"{server.H2cListen}\" is already used by server.listen or server.admin_listen; h2c needs its own port");
        }

        var token = context.Sha256("server.admin_token_sha256", server.AdminTokenSha256, allowEmpty: true);
        if (server.MaxRequestBytes <= 0)
        {
            context.Error("server.max_request_bytes", $"must be greater than 0 (got {server.MaxRequestBytes})");
        }

        var grace = context.Positive("server.shutdown_grace", server.ShutdownGrace);
        if (server.MaxConnections < 0)
        {
            context.Error("server.max_connections", $"must be 0 (no limit) or more (got {server.MaxConnections})");
        }

        // 1 KiB: a request line and a Host header; 1 MiB: a thousand clients sending headers
        // slowly would already hold a GiB.
        if (server.MaxHeaderBytes is < 1024 or > 1024 * 1024)
        {
            context.Error("server.max_header_bytes", $"must be 1024 to 1048576 bytes (got {server.MaxHeaderBytes})");
        }

        var transport = server.Transport switch
        {
            "sockets" => ListenerTransport.Sockets,
            "epoll" when OperatingSystem.IsLinux() => ListenerTransport.Epoll,
            "epoll" => Invalid(context, "\"epoll\" needs Linux; use \"sockets\""),
            _ => Invalid(context, $"must be \"sockets\" or \"epoll\" (got \"{server.Transport}\")"),
        };

        // "0" (or "0s"): parking is off.
        var park = server.ParkIdleAfter == "0" || (Duration.TryParse(server.ParkIdleAfter, out var zero) && zero == TimeSpan.Zero)
            ? TimeSpan.Zero
            : context.Positive("server.park_idle_after", server.ParkIdleAfter);
        return new ServerModel(
            listen ?? new IPEndPoint(IPAddress.Loopback, 8080),
            admin ?? new IPEndPoint(IPAddress.Loopback, 9090),
            token,
            server.MaxRequestBytes,
            grace,
            h2c,
            Math.Max(server.MaxConnections, 0),
            Math.Clamp(server.MaxHeaderBytes, 1024, 1024 * 1024),
            transport,
            park);
    }

    private static ListenerTransport Invalid(ValidationContext context, string message)
    {
        context.Error("server.transport", message);
        return ListenerTransport.Sockets;
    }
}
