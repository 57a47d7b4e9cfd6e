using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace AotProxy.Configuration;

// "host:port" for server.listen and server.admin_listen. The host is an IP literal ("0.0.0.0",
// "[::1]", "[::]") or "localhost"; other names are refused because a listener binds an address,
// and a DNS lookup at startup would make the bound address depend on the resolver. Port 0 lets
// the OS choose (tests, `aotproxy demo`).
internal static class ListenAddress
{
    public static bool TryParse(string text, [NotNullWhen(true)] out IPEndPoint? endPoint, [NotNullWhen(false)] out string? error)
    {
        endPoint = null;
        error = null;
        string host;
        string port;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf("]:", StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"\"{text}\" is not host:port; an IPv6 address is written \"[::1]:8080\"";
                return false;
            }

            host = text[1..close];
            port = text[(close + 2)..];
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon < 0)
            {
                error = $"\"{text}\" has no port; write host:port, e.g. \"127.0.0.1:8080\"";
                return false;
            }

            host = text[..colon];
            port = text[(colon + 1)..];
            if (host.Contains(':', StringComparison.Ordinal))
            {
                error = $"\"{text}\": an IPv6 address needs brackets, e.g. \"[::1]:8080\"";
                return false;
            }
        }

        if (port.Length == 0 || !port.All(char.IsAsciiDigit)
            || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var portNumber)
            || portNumber > IPEndPoint.MaxPort)
        {
            error = $"\"{text}\": port must be a number from 0 to 65535";
            return false;
        }

        IPAddress? address;
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (host.Length == 0 || !IPAddress.TryParse(host, out address))
        {
            error = $"\"{text}\": host must be an IP address or localhost";
            return false;
        }

        endPoint = new IPEndPoint(address, portNumber);
        return true;
    }
}
