using System.Net;
using System.Net.Sockets;

namespace AotProxy.Hosting;

// A listener could not bind its address (in use, a privileged port, an address the host does not
// have). The message is the one line an operator needs: "cannot listen on 127.0.0.1:8080
// (server.listen): the address is already in use"; Kestrel's own is a chain of three exceptions.
internal sealed class ListenFailedException : IOException
{
    public ListenFailedException(IPEndPoint endPoint, string reason, string? setting, Exception? inner)
        : base($"cannot listen on {endPoint}{(setting is null ? "" : $" ({setting})")}: {reason}", inner)
    {
        EndPoint = endPoint;
        Reason = reason;
        Setting = setting;
    }

    public IPEndPoint EndPoint { get; }

    public string Reason { get; }

    // The config key that names the address, when the caller knows it.
    public string? Setting { get; }

    // The same failure, naming the config key the address came from.
    public ListenFailedException For(string setting) => new(EndPoint, Reason, setting, InnerException);

    // In our words for the common socket errors (the AOT binary's runtime messages are resource
    // keys); null when no socket failed. Kestrel wraps "in use" in two exceptions and lets the
    // others through as they are, so the whole chain is searched.
    public static string? ReasonOf(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket)
            {
                return socket.SocketErrorCode switch
                {
                    SocketError.AddressAlreadyInUse => "the address is already in use",
                    SocketError.AccessDenied => "permission denied (a port below 1024 needs a privilege)",
                    SocketError.AddressNotAvailable => "the address is not one of this host's",
                    var other => $"socket error {other}",
                };
            }
        }

        return null;
    }
}
