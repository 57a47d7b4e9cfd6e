using System.Collections.Frozen;
using System.Text;
using AotProxy.Identity;
using AotProxy.Tests.Support;
using static AotProxy.Tests.Identity.IdentitySetup;

namespace AotProxy.Tests.Identity;

// The JWT reader under random and mutated input (Fuzz: AOTPROXY_FUZZ_SECONDS, AOTPROXY_FUZZ_SEED).
// Each input is tried three ways: as the token's text, as its header JSON, and as its claims JSON in
// a token that is correctly signed, so that mutations reach the claims reader behind the signature.
// The contract: Validate never throws, it returns an IdentifyFailure, and it names a tenant exactly
// when it returns None.
public sealed class JwtValidatorFuzzTests
{
    [Fact]
    public void Validate_RandomAndMutatedTokensHeadersAndClaims_KeepsItsContract()
    {
        var snapshot = Snapshot(
            jwks: TestJwt.Jwks(TestJwt.RsaJwk(Rsa, "rsa-1"), TestJwt.EcJwk(Ec, "ec-1")),
            jwt: "issuer = \"https://idp.example\"\naudience = \"gateway\"\nclass_claim = \"tier\"");
        var validator = new JwtValidator(
            snapshot.Jwt,
            snapshot.Tenants.ToFrozenDictionary(t => t.Name, StringComparer.Ordinal),
            snapshot.ClassesByName);
        var claims = TestJwt.Claims("acme", Now, "\"iss\":\"https://idp.example\",\"aud\":[\"other\",\"gateway\"],\"tier\":\"gold\",\"nbf\":" + (Now.ToUnixTimeSeconds() - 5));
        string[] headers =
        [
            """{"alg":"HS256","typ":"JWT"}""",
            """{"alg":"RS256","typ":"JWT","kid":"rsa-1"}""",
            """{"alg":"ES256","kid":"ec-1","cty":"JWT","x5u":"https://evil.example/k"}""",
            """{"alg":"none"}""",
        ];
        var seeds = headers.Concat([claims, TestJwt.Claims("beta", Now, "\"aud\":\"gateway\",\"iss\":\"https://idp.example\"")])
            .Select(Encoding.UTF8.GetBytes)
            .Concat(new[]
            {
                TestJwt.Hs256(claims),
                TestJwt.Rs256(Rsa, claims, "rsa-1"),
                TestJwt.Es256(Ec, claims, "ec-1"),
            }.Select(Encoding.ASCII.GetBytes))
            .ToList();
        Assert.Equal(IdentifyFailure.None, validator.Validate(TestJwt.Hs256(claims), Now, out _, out _)); // the seeds reach the end
        var header = Encoding.UTF8.GetBytes(headers[0]);
        var body = Encoding.UTF8.GetBytes(claims);

        var inputs = Fuzz.Run(seeds, input =>
        {
            Check(validator, Encoding.Latin1.GetString(input));
            Check(validator, TestJwt.Hs256(body, input));
            Check(validator, TestJwt.Hs256(input, header));
        });

        Assert.True(inputs > seeds.Count, $"only {inputs} inputs ran");
    }

    private static void Check(JwtValidator validator, string token)
    {
        var failure = validator.Validate(token, Now, out var tenant, out var tokenClass);

        Assert.True(Enum.IsDefined(failure), $"undefined IdentifyFailure {failure}");
        Assert.True((failure == IdentifyFailure.None) == (tenant is not null), $"{failure} with tenant {tenant?.Name}");
        Assert.True(failure == IdentifyFailure.None || tokenClass is null, $"{failure} with class {tokenClass?.Name}");
    }
}
