using System.Collections.Immutable;
using AotProxy.Identity;

namespace AotProxy.Configuration;

// The JwtKeys hold imported RSA/ECDsa public keys. They are not disposed when a reload replaces
// the snapshot (requests in flight may still verify with them); their finalizers free the handles.
internal sealed record JwtModel(
    ImmutableArray<byte> Hs256Secret, // empty: HS256 tokens are rejected
    ImmutableArray<JwtKey> Keys,      // from jwks_file; empty: RS256 and ES256 tokens are rejected
    string Issuer,                    // "": not checked
    string Audience,                  // "": not checked
    string TenantClaim,
    string ClassClaim,                // "": ignored
    TimeSpan ClockSkew)
{
    public static JwtModel Off { get; } = new([], [], "", "", "tenant", "class", TimeSpan.FromSeconds(30));

    public bool Enabled => !Hs256Secret.IsEmpty || !Keys.IsEmpty;
}
