using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [auth]: who is trusted without an API key or a JWT.
internal sealed record AuthConfig
{
    // "": requests without credentials get 401. A class name: they are served as tenant
    // "anonymous" in that class. Off by default, so an open gateway is always a deliberate choice.
    public string DefaultClass { get; init; } = "";

    // x-tenant, x-customer-tier and x-priority are honoured only when this is true AND the
    // connection comes from one of TrustedSources (an authenticating proxy such as Envoy).
    public bool TrustedHeaders { get; init; }

    // CIDRs ("10.0.0.0/8", "fd00::/8") or single addresses.
    public IReadOnlyList<string> TrustedSources { get; init; } = [];

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
