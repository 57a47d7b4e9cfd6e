namespace AotProxy.Identity;

// One JWK as written (RFC 7517 4, RFC 7518 6). Only the members a public signing key needs;
// others (key_ops, x5c, private parts) are ignored.
internal sealed record JsonWebKey
{
    public string? Kty { get; init; }

    public string? Kid { get; init; }

    public string? Alg { get; init; }

    public string? Use { get; init; }

    // EC
    public string? Crv { get; init; }

    public string? X { get; init; }

    public string? Y { get; init; }

    // RSA
    public string? N { get; init; }

    public string? E { get; init; }
}
