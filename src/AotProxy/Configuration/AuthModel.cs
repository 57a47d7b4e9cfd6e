using System.Collections.Immutable;
using System.Net;

namespace AotProxy.Configuration;

internal sealed record AuthModel(
    string DefaultClass,                       // "": no anonymous access
    bool TrustedHeaders,
    ImmutableArray<IPNetwork> TrustedSources)  // IPv4 networks hold IPv4 addresses, never IPv4-mapped IPv6
{
    public static AuthModel Off { get; } = new("", false, []);
}
