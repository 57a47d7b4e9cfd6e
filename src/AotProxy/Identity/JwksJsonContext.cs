using System.Text.Json.Serialization;

namespace AotProxy.Identity;

// Source-generated, so reading the JWKS file needs no reflection and stays AOT-clean.
// camelCase: "kty", "kid", "n", "e", "x", "y", as RFC 7517 spells them; matching is case-sensitive.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(JsonWebKeySet))]
internal sealed partial class JwksJsonContext : JsonSerializerContext;
