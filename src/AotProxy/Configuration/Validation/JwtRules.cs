using System.Collections.Immutable;
using AotProxy.Identity;

namespace AotProxy.Configuration.Validation;

// [jwt]: keys, claims and clock skew.
internal static class JwtRules
{
    // Claims the validator reads itself; a tenant or class claim by one of these names would be
    // read twice with two meanings.
    private static readonly string[] RegisteredClaims = ["exp", "nbf", "iat", "iss", "aud"];

    // 10 minutes: a larger skew keeps expired tokens alive for longer than clocks ever drift.
    private static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(10);

    // inputs: the secret and keys the loader read for jwt.hs256_secret_env and jwt.jwks_file.
    public static JwtModel Validate(ValidationContext context, JwtConfig jwt, ConfigInputs inputs)
    {
        context.Unknown("jwt", jwt.Unknown);
        ImmutableArray<byte> secret = [];
        if (jwt.Hs256SecretEnv.Length > 0)
        {
            var value = inputs.Hs256Secret;
            if (string.IsNullOrEmpty(value))
            {
                context.Error("jwt.hs256_secret_env", $"the environment variable {jwt.Hs256SecretEnv} is not set or empty; it must hold the HS256 secret");
            }
            else if (System.Text.Encoding.UTF8.GetByteCount(value) < 32)
            {
                context.Error("jwt.hs256_secret_env", $"the secret in {jwt.Hs256SecretEnv} has {System.Text.Encoding.UTF8.GetByteCount(value)} bytes; HS256 needs at least 32 (256 bits, RFC 7518 3.2)");
            }
            else
            {
                secret = [.. System.Text.Encoding.UTF8.GetBytes(value)];
            }
        }

        ImmutableArray<JwtKey> keys = [];
        if (jwt.JwksFile.Length > 0)
        {
            if (inputs.JwksError is { } error)
            {
                context.Error("jwt.jwks_file", error);
            }
            else
            {
                keys = inputs.JwksKeys;
            }
        }

        if (jwt.Hs256SecretEnv.Length == 0 && jwt.JwksFile.Length == 0)
        {
            if (jwt.Issuer.Length > 0)
            {
                context.Error("jwt.issuer", "is set, but JWT is off; set jwt.hs256_secret_env or jwt.jwks_file to turn it on");
            }

            if (jwt.Audience.Length > 0)
            {
                context.Error("jwt.audience", "is set, but JWT is off; set jwt.hs256_secret_env or jwt.jwks_file to turn it on");
            }
        }

        if (string.IsNullOrWhiteSpace(jwt.TenantClaim))
        {
            context.Error("jwt.tenant_claim", "must name the claim that holds the tenant (\"tenant\" by default)");
        }
        else if (RegisteredClaims.Contains(jwt.TenantClaim))
        {
            context.Error("jwt.tenant_claim", $"\"{jwt.TenantClaim}\" is a registered claim the gateway checks itself; name the claim that holds the tenant");
        }

        if (RegisteredClaims.Contains(jwt.ClassClaim))
        {
            context.Error("jwt.class_claim", $"\"{jwt.ClassClaim}\" is a registered claim the gateway checks itself; name the claim that holds the class (\"\" ignores classes in tokens)");
        }
        else if (jwt.ClassClaim.Length > 0 && string.Equals(jwt.ClassClaim, jwt.TenantClaim, StringComparison.Ordinal))
        {
            context.Error("jwt.class_claim", $"is the same claim as jwt.tenant_claim (\"{jwt.TenantClaim}\"); one claim cannot name both");
        }

        if (!Duration.TryParse(jwt.ClockSkew, out var skew))
        {
            context.Error("jwt.clock_skew", $"\"{jwt.ClockSkew}\" is not a duration; write a number and a unit: \"0s\", \"30s\", \"1m\"");
        }
        else if (skew > MaxClockSkew)
        {
            context.Error("jwt.clock_skew", $"must be at most 10m (got \"{jwt.ClockSkew}\"); a larger skew keeps expired tokens alive");
        }

        return new JwtModel(secret, keys, jwt.Issuer, jwt.Audience, jwt.TenantClaim, jwt.ClassClaim, skew);
    }
}
