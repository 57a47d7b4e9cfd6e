using System.Collections.Immutable;
using AotProxy.Identity;

namespace AotProxy.Configuration;

// What a config names outside itself, read by the loader before validation: the HS256 secret in
// the environment variable jwt.hs256_secret_env names (null: not set), and the keys of
// jwt.jwks_file, or why they could not be read. The validator checks what was read and reads
// nothing itself, so the same text and inputs always validate the same way.
internal sealed record ConfigInputs(string? Hs256Secret, ImmutableArray<JwtKey> JwksKeys, string? JwksError)
{
    public static ConfigInputs None { get; } = new(null, [], null);
}
