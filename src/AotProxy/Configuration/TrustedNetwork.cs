using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace AotProxy.Configuration;

// auth.trusted_sources entries: "10.0.0.0/8", "fd00::/8", or one address ("10.0.0.7" = /32).
internal static class TrustedNetwork
{
    // Whether a connection's peer lies in one of the networks (trusted headers, forwarded headers).
    public static bool Contains(ImmutableArray<IPNetwork> networks, IPAddress? remote)
    {
        if (networks.IsEmpty || remote is null)
        {
            return false; // null: not a TCP connection (tests, or a Unix socket nobody configured)
        }

        // Kestrel on a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; the config speaks IPv4.
        if (remote.IsIPv4MappedToIPv6)
        {
            remote = remote.MapToIPv4();
        }

        foreach (var network in networks)
        {
            if (network.Contains(remote))
            {
                return true;
            }
        }

        return false;
    }

    public static bool TryParse(string text, out IPNetwork network)
    {
        network = default;
        text = text.Trim();
        var slash = text.IndexOf('/');
        var host = slash < 0 ? text : text[..slash];

        // IPAddress.TryParse also takes inet_aton's shorthands ("10" is 0.0.0.10): a network that
        // decides who may pick their tenant is written out in full. No zone ids ("%eth0") either.
        if (host.Contains('%') || (!host.Contains(':') && host.Count(c => c == '.') != 3) || !IPAddress.TryParse(host, out var address))
        {
            return false;
        }

        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = bits;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > bits))
        {
            return false;
        }

        // "::ffff:10.0.0.0/104" means 10.0.0.0/8; remote addresses are compared as IPv4 too (CallerResolver).
        if (address.IsIPv4MappedToIPv6 && prefix >= 96)
        {
            address = address.MapToIPv4();
            prefix -= 96;
        }

        // Host bits set ("10.1.2.3/8") are most likely a typo for a /32 or for 10.0.0.0/8: refused, not guessed.
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var length);
        for (var bit = prefix; bit < length * 8; bit++)
        {
            if ((bytes[bit / 8] & (0x80 >> (bit % 8))) != 0)
            {
                return false;
            }
        }

        network = new IPNetwork(address, prefix);
        return true;
    }
}
