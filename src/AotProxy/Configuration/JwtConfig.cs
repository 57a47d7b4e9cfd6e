using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [jwt]: bearer tokens signed by an identity provider. Off unless hs256_secret_env or jwks_file is set.
internal sealed record JwtConfig
{
    // The name of an environment variable that holds the HS256 secret: the file never holds it.
    public string Hs256SecretEnv { get; init; } = "";

    // A JSON Web Key Set with the RS256/ES256 public keys; a relative path is relative to the config file.
    public string JwksFile { get; init; } = "";

    // "": any. Otherwise iss must equal it.
    public string Issuer { get; init; } = "";

    // "": any. Otherwise aud (a string or an array) must contain it.
    public string Audience { get; init; } = "";

    public string TenantClaim { get; init; } = "tenant";

    // "": class claims are ignored and the tenant's class applies.
    public string ClassClaim { get; init; } = "class";

    // 30 s: what most IdPs and proxies allow for clocks that drift between machines.
    public string ClockSkew { get; init; } = "30s";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
