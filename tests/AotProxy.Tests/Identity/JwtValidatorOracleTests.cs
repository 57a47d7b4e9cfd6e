using System.Buffers.Text;
using System.Security.Claims;
using System.Text;
using System.Text.Json.Nodes;
using AotProxy.Configuration;
using AotProxy.Identity;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using static AotProxy.Tests.Identity.IdentitySetup;

namespace AotProxy.Tests.Identity;

// Microsoft.IdentityModel, an implementation that shares no code with ours, as the oracle: it
// signs the tokens an IdP would send (HS256, RS256, ES256; exp, nbf, iat, iss, aud and the
// configured tenant and class claims), and it validates each token the gateway is shown with
// the same keys, issuer, audience and skew. Good tokens must pass both; a token tampered with,
// or signed for other claims, must fail both, and the gateway must say why. The oracle reads
// the system clock (its TimeProvider is not public), so both sides use the real time, and the
// times tried keep 10 s or more from the edges of the 30 s skew.
public sealed class JwtValidatorOracleTests
{
    private const string Issuer = "https://idp.example.com/";
    private const string Audience = "aotproxy";

    // A kid on the HS256 key too: the oracle, told not to try every key, needs one to find it;
    // the gateway has one HS256 secret and ignores it.
    private static readonly SymmetricSecurityKey HsKey = new(Encoding.UTF8.GetBytes(TestJwt.Secret)) { KeyId = "hs-1" };
    private static readonly RsaSecurityKey RsaKey = new(Rsa) { KeyId = "rsa-1" };
    private static readonly ECDsaSecurityKey EcKey = new(Ec) { KeyId = "ec-1" };

    // Configured claim names, not the defaults: the oracle's claims must land where the config says.
    private static readonly GatewaySnapshot Gateway = Snapshot(
        jwt: $"issuer = \"{Issuer}\"\naudience = \"{Audience}\"\ntenant_claim = \"org\"\nclass_claim = \"tier\"",
        jwks: TestJwt.Jwks(TestJwt.RsaJwk(Rsa, "rsa-1"), TestJwt.EcJwk(Ec, "ec-1")));

    public static TheoryData<string> Algorithms => ["HS256", "RS256", "ES256"];

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task OracleSignedToken_IsAccepted_AsTheTenantAndClassOfTheConfiguredClaims(string algorithm)
    {
        var now = DateTimeOffset.UtcNow;
        var token = Sign(algorithm, Descriptor(now));

        Assert.True(await OracleAcceptsAsync(token), "the oracle refuses its own token");
        var result = Identify(Gateway, now, "Bearer " + token, "127.0.0.1");
        Assert.True(result.IsIdentified, result.Failure.ToString());
        Assert.Equal(("beta", "free", 5, IdentitySource.Jwt), (result.Caller.Tenant.Name, result.Caller.Class.Name, result.Caller.Priority, result.Caller.Source));
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task OracleSignedToken_WithAnAudienceArrayThatHoldsOurs_IsAccepted(string algorithm)
    {
        var now = DateTimeOffset.UtcNow;
        var descriptor = Descriptor(now);
        descriptor.Audience = null;
        descriptor.Audiences.Add("other-api");
        descriptor.Audiences.Add(Audience);
        var token = Sign(algorithm, descriptor);

        Assert.True(await OracleAcceptsAsync(token), "the oracle refuses its own token");
        Assert.Equal(IdentifyFailure.None, FailureAt(now, token));
    }

    [Theory]
    [InlineData("HS256", -3600, -20)] // expired 20 s ago, within the skew
    [InlineData("RS256", -3600, -20)]
    [InlineData("ES256", -3600, -20)]
    [InlineData("HS256", 20, 3600)]   // valid from 20 s ahead, within the skew
    [InlineData("RS256", 20, 3600)]
    [InlineData("ES256", 20, 3600)]
    public async Task OracleSignedToken_JustOutsideItsLifetime_IsAcceptedWithinTheSkew(string algorithm, int validFrom, int validUntil)
    {
        var now = DateTimeOffset.UtcNow;
        var descriptor = Descriptor(now);
        (descriptor.IssuedAt, descriptor.NotBefore, descriptor.Expires) = (now.UtcDateTime.AddSeconds(validFrom), now.UtcDateTime.AddSeconds(validFrom), now.UtcDateTime.AddSeconds(validUntil));
        var token = Sign(algorithm, descriptor);

        Assert.True(await OracleAcceptsAsync(token), "the oracle refuses the token");
        Assert.Equal(IdentifyFailure.None, FailureAt(now, token));
    }

    [Theory]
    [InlineData("HS256", "claims", "BadSignature")]     // org rewritten to another tenant after signing
    [InlineData("RS256", "claims", "BadSignature")]
    [InlineData("ES256", "claims", "BadSignature")]
    [InlineData("HS256", "header", "BadSignature")]     // a header member added after signing
    [InlineData("RS256", "header", "BadSignature")]
    [InlineData("ES256", "header", "BadSignature")]
    [InlineData("HS256", "signature", "BadSignature")]  // one bit of the signature flipped
    [InlineData("RS256", "signature", "BadSignature")]
    [InlineData("ES256", "signature", "BadSignature")]
    [InlineData("HS256", "alg-none", "UnsupportedAlgorithm")] // alg: none, signature dropped
    [InlineData("RS256", "alg-none", "UnsupportedAlgorithm")]
    [InlineData("ES256", "alg-none", "UnsupportedAlgorithm")]
    [InlineData("HS256", "other-key", "BadSignature")]  // signed by a key the config does not hold
    [InlineData("RS256", "other-key", "BadSignature")]  // (the same kid, other key material)
    [InlineData("ES256", "other-key", "BadSignature")]
    [InlineData("RS256", "unknown-kid", "UnknownKey")]  // signed right, but naming a kid the JWKS lacks
    [InlineData("ES256", "unknown-kid", "UnknownKey")]
    public async Task OracleSignedToken_TamperedWith_IsRefused(string algorithm, string tamper, string expected)
    {
        var now = DateTimeOffset.UtcNow;
        var token = tamper switch
        {
            "claims" => Rewrite(Sign(algorithm, Descriptor(now)), part: 1, json => json["org"] = "acme"),
            "header" => Rewrite(Sign(algorithm, Descriptor(now)), part: 0, json => json["cty"] = "JWT"),
            "signature" => FlipSignatureBit(Sign(algorithm, Descriptor(now))),
            "alg-none" => string.Join('.', Rewrite(Sign(algorithm, Descriptor(now)), part: 0, json => json["alg"] = "none").Split('.')[..2]) + ".",
            "other-key" => Sign(algorithm, Descriptor(now), other: true),
            "unknown-kid" => Sign(algorithm, Descriptor(now), kid: algorithm + "-retired"),
            _ => throw new ArgumentOutOfRangeException(nameof(tamper)),
        };

        Assert.False(await OracleAcceptsAsync(token), "the oracle accepts the tampered token, so it is no test");
        Assert.Equal(expected, FailureAt(now, token).ToString());
    }

    [Theory]
    [InlineData("HS256", "issuer", "WrongIssuer")]
    [InlineData("RS256", "issuer", "WrongIssuer")]
    [InlineData("ES256", "issuer", "WrongIssuer")]
    [InlineData("HS256", "audience", "WrongAudience")]
    [InlineData("RS256", "audience", "WrongAudience")]
    [InlineData("ES256", "audience", "WrongAudience")]
    [InlineData("HS256", "expired", "Expired")]         // exp 40 s ago: beyond the 30 s skew
    [InlineData("RS256", "expired", "Expired")]
    [InlineData("ES256", "expired", "Expired")]
    [InlineData("HS256", "not-yet", "NotYetValid")]     // nbf 40 s ahead
    [InlineData("RS256", "not-yet", "NotYetValid")]
    [InlineData("ES256", "not-yet", "NotYetValid")]
    public async Task OracleSignedToken_ForOtherClaims_IsRefused(string algorithm, string change, string expected)
    {
        var now = DateTimeOffset.UtcNow;
        var descriptor = Descriptor(now);
        var at = now.UtcDateTime;
        switch (change)
        {
            case "issuer":
                descriptor.Issuer = "https://other-idp.example.com/";
                break;
            case "audience":
                descriptor.Audience = "other-api";
                break;
            case "expired":
                (descriptor.IssuedAt, descriptor.NotBefore, descriptor.Expires) = (at.AddHours(-1), at.AddHours(-1), at.AddSeconds(-40));
                break;
            case "not-yet":
                (descriptor.IssuedAt, descriptor.NotBefore, descriptor.Expires) = (at, at.AddSeconds(40), at.AddHours(1));
                break;
        }

        var token = Sign(algorithm, descriptor);

        Assert.False(await OracleAcceptsAsync(token), "the oracle accepts the token, so it is no test");
        Assert.Equal(expected, FailureAt(now, token).ToString());
    }

    private static IdentifyFailure FailureAt(DateTimeOffset now, string token) =>
        Identify(Gateway, now, "Bearer " + token, "127.0.0.1").Failure;

    // Tenant beta (class gold in the config) with the class claim free; valid from a minute
    // before now for an hour.
    private static SecurityTokenDescriptor Descriptor(DateTimeOffset at)
    {
        var now = at.UtcDateTime;
        return new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now.AddSeconds(-60),
            NotBefore = now.AddSeconds(-60),
            Expires = now.AddHours(1),
            Subject = new ClaimsIdentity([new Claim("sub", "user-1")]),
            Claims = new Dictionary<string, object> { ["org"] = "beta", ["tier"] = "free" },
        };
    }

    private static string Sign(string algorithm, SecurityTokenDescriptor descriptor, bool other = false, string? kid = null)
    {
        descriptor.SigningCredentials = algorithm switch
        {
            "HS256" => new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(other ? TestJwt.Secret + "-other" : TestJwt.Secret)) { KeyId = kid ?? HsKey.KeyId }, SecurityAlgorithms.HmacSha256),
            "RS256" => new SigningCredentials(new RsaSecurityKey(other ? OtherRsa : Rsa) { KeyId = kid ?? RsaKey.KeyId }, SecurityAlgorithms.RsaSha256),
            "ES256" => new SigningCredentials(new ECDsaSecurityKey(other ? OtherEc : Ec) { KeyId = kid ?? EcKey.KeyId }, SecurityAlgorithms.EcdsaSha256),
            _ => throw new ArgumentOutOfRangeException(nameof(algorithm)),
        };
        return new JsonWebTokenHandler().CreateToken(descriptor);
    }

    // The oracle's verdict with the gateway's settings: its keys (matched by kid, as the gateway
    // does: no trying every key), issuer, audience and 30 s skew.
    private static async Task<bool> OracleAcceptsAsync(string token)
    {
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = Audience,
            IssuerSigningKeys = [HsKey, RsaKey, EcKey],
            TryAllIssuerSigningKeys = false,
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256, SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256],
            ClockSkew = TimeSpan.FromSeconds(30),
        });
        return result.IsValid;
    }

    // The token with one of its JSON parts (0: header, 1: claims) edited and re-encoded; the
    // signature is left as it was.
    private static string Rewrite(string token, int part, Action<JsonObject> edit)
    {
        var parts = token.Split('.');
        var json = JsonNode.Parse(Base64Url.DecodeFromChars(parts[part]))!.AsObject();
        edit(json);
        parts[part] = Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json.ToJsonString()));
        return string.Join('.', parts);
    }

    private static string FlipSignatureBit(string token)
    {
        var parts = token.Split('.');
        var signature = Base64Url.DecodeFromChars(parts[2]);
        signature[signature.Length / 2] ^= 0x10;
        parts[2] = Base64Url.EncodeToString(signature);
        return string.Join('.', parts);
    }
}
