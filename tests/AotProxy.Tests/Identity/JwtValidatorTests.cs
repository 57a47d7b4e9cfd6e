using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using AotProxy.Configuration;
using AotProxy.Identity;
using static AotProxy.Tests.Identity.IdentitySetup;

namespace AotProxy.Tests.Identity;

// JWTs through the snapshot's resolver, as the data plane sees them: "Authorization: Bearer <jwt>".
public sealed class JwtValidatorTests
{
    private static readonly string Jwks = TestJwt.Jwks(TestJwt.RsaJwk(Rsa, "rsa-1"), TestJwt.EcJwk(Ec, "ec-1"));

    [Fact]
    public void Hs256_GoodToken_IdentifiesTheTenantWithItsClassPriorityAndEnvironment()
    {
        var snapshot = Snapshot();

        var result = Identify(snapshot, "Bearer " + TestJwt.Hs256(TestJwt.Claims("acme", Now)));

        Assert.True(result.IsIdentified, result.Failure.ToString());
        var caller = result.Caller;
        Assert.Equal(("acme", "free", 5, "prod", IdentitySource.Jwt), (caller.Tenant.Name, caller.Class.Name, caller.Priority, caller.Environment, caller.Source));
    }

    [Fact]
    public void Rs256_GoodToken_WithItsKidOrAsTheOnlyRsaKey_IsAccepted()
    {
        var snapshot = Snapshot(jwks: Jwks);

        Assert.Equal(IdentifyFailure.None, FailureOf(snapshot, TestJwt.Rs256(Rsa, TestJwt.Claims("beta", Now), kid: "rsa-1")));
        Assert.Equal(IdentifyFailure.None, FailureOf(snapshot, TestJwt.Rs256(Rsa, TestJwt.Claims("beta", Now), kid: null)));
        var caller = Identify(snapshot, "Bearer " + TestJwt.Rs256(Rsa, TestJwt.Claims("beta", Now), kid: "rsa-1")).Caller;
        Assert.Equal(("beta", "gold", 1), (caller.Tenant.Name, caller.Class.Name, caller.Priority));
    }

    [Fact]
    public void Es256_GoodToken_IsAccepted()
    {
        var snapshot = Snapshot(jwks: Jwks);

        var result = Identify(snapshot, "Bearer " + TestJwt.Es256(Ec, TestJwt.Claims("acme", Now), kid: "ec-1"));

        Assert.True(result.IsIdentified, result.Failure.ToString());
        Assert.Equal("acme", result.Caller.Tenant.Name);
        Assert.Equal(IdentifyFailure.None, FailureOf(snapshot, TestJwt.Es256(Ec, TestJwt.Claims("acme", Now))));
    }

    [Theory]
    [InlineData(-31, "Expired")]      // beyond the 30 s skew
    [InlineData(-3600, "Expired")]
    [InlineData(-29, "None")]          // within the skew
    [InlineData(60, "None")]
    public void Exp_IsCheckedWithTheClockSkew(int expiresIn, string expected)
    {
        var snapshot = Snapshot(jwks: Jwks);
        var claims = TestJwt.Claims("acme", Now, exp: Now.ToUnixTimeSeconds() + expiresIn);

        Assert.Equal(expected, Failure(snapshot, TestJwt.Hs256(claims)));
        Assert.Equal(expected, Failure(snapshot, TestJwt.Rs256(Rsa, claims, "rsa-1")));
        Assert.Equal(expected, Failure(snapshot, TestJwt.Es256(Ec, claims, "ec-1")));
    }

    [Fact]
    public void Exp_ConfiguredSkewOfZero_ExpiresAtTheSecond()
    {
        var snapshot = Snapshot(jwt: "clock_skew = \"0s\"");

        Assert.Equal(IdentifyFailure.Expired, FailureOf(snapshot, TestJwt.Hs256(TestJwt.Claims("acme", Now, exp: Now.ToUnixTimeSeconds()))));
        Assert.Equal(IdentifyFailure.None, FailureOf(snapshot, TestJwt.Hs256(TestJwt.Claims("acme", Now, exp: Now.ToUnixTimeSeconds() + 1))));
    }

    [Theory]
    [InlineData("\"nbf\":{0}", 120, "NotYetValid")]
    [InlineData("\"nbf\":{0}", 20, "None")]
    [InlineData("\"nbf\":{0}", -20, "None")]
    [InlineData("\"nbf\":{0}.5", -20, "None")]
    public void Nbf_InTheFutureBeyondTheSkew_IsNotYetValid(string claim, int offset, string expected)
    {
        var snapshot = Snapshot();
        var claims = TestJwt.Claims("acme", Now, string.Format(System.Globalization.CultureInfo.InvariantCulture, claim, Now.ToUnixTimeSeconds() + offset));

        Assert.Equal(expected, Failure(snapshot, TestJwt.Hs256(claims)));
    }

    [Fact]
    public void Iat_InTheFuture_IsNotYetValid_AndAMissingExpIsRefused()
    {
        var snapshot = Snapshot();
        var future = Now.ToUnixTimeSeconds() + 600;

        Assert.Equal(IdentifyFailure.NotYetValid, FailureOf(snapshot, TestJwt.Hs256($$"""{"tenant":"acme","iat":{{future}},"exp":{{future + 60}}}""")));
        Assert.Equal(IdentifyFailure.MissingExpiry, FailureOf(snapshot, TestJwt.Hs256("""{"tenant":"acme"}""")));
        Assert.Equal(IdentifyFailure.MalformedToken, FailureOf(snapshot, TestJwt.Hs256($$"""{"tenant":"acme","exp":"{{future}}"}""")));
    }

    [Fact]
    public void WrongSignature_IsRefusedForEveryAlgorithm()
    {
        var snapshot = Snapshot(jwks: Jwks);
        var claims = TestJwt.Claims("acme", Now);

        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, TestJwt.Hs256(claims, secret: TestJwt.Secret + "x")));
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, TestJwt.Rs256(OtherRsa, claims, "rsa-1")));
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, TestJwt.Es256(OtherEc, claims, "ec-1")));

        // A valid token with its claims swapped for others: the signature no longer covers them.
        var good = TestJwt.Hs256(claims).Split('.');
        var forged = $"{good[0]}.{TestJwt.Segment(TestJwt.Claims("beta", Now))}.{good[2]}";
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, forged));

        // Truncated and empty signatures.
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, $"{good[0]}.{good[1]}.{good[2][..20]}"));
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, $"{good[0]}.{good[1]}."));
        var rs = TestJwt.Rs256(Rsa, claims, "rsa-1").Split('.');
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, $"{rs[0]}.{rs[1]}.{rs[2][..40]}"));
        var es = TestJwt.Es256(Ec, claims, "ec-1").Split('.');
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, $"{es[0]}.{es[1]}."));
    }

    [Theory]
    [InlineData("""{"alg":"none","typ":"JWT"}""")]
    [InlineData("""{"alg":"None"}""")]
    [InlineData("""{"alg":"NONE"}""")]
    [InlineData("""{"alg":"HS512"}""")]
    [InlineData("""{"alg":"RS512"}""")]
    [InlineData("""{"alg":"PS256"}""")]
    [InlineData("""{"alg":"hs256"}""")]
    [InlineData("""{"alg":""}""")]
    public void AlgNoneAndUnknownAlgorithms_AreRefused(string header)
    {
        var snapshot = Snapshot(jwks: Jwks);
        var claims = TestJwt.Claims("acme", Now);

        // Unsigned, as "alg":"none" tokens come, and signed with the HS256 secret for good measure.
        Assert.Equal(IdentifyFailure.UnsupportedAlgorithm, FailureOf(snapshot, TestJwt.Segment(header) + "." + TestJwt.Segment(claims) + "."));
        Assert.Equal(IdentifyFailure.UnsupportedAlgorithm, FailureOf(snapshot, TestJwt.Hs256(claims, header)));
    }

    [Fact]
    public void AlgConfusion_Hs256SignedWithThePublicRsaKey_IsRefused()
    {
        // Only the JWKS is configured: the attacker knows the public key and signs HS256 with it.
        var snapshot = Snapshot(jwks: Jwks, hs256: false);
        var claims = TestJwt.Claims("acme", Now);
        foreach (var publicKey in new[] { Rsa.ExportSubjectPublicKeyInfo(), Rsa.ExportRSAPublicKey(), Encoding.ASCII.GetBytes(Rsa.ExportSubjectPublicKeyInfoPem()) })
        {
            var confused = TestJwt.Sign("""{"alg":"HS256","typ":"JWT","kid":"rsa-1"}""", claims, input => HMACSHA256.HashData(publicKey, input));
            Assert.Equal(IdentifyFailure.UnsupportedAlgorithm, FailureOf(snapshot, confused));
        }

        // With an HS256 secret configured as well, the public key is still not it.
        var both = Snapshot(jwks: Jwks);
        var pem = Encoding.ASCII.GetBytes(Rsa.ExportSubjectPublicKeyInfoPem());
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(both, TestJwt.Sign("""{"alg":"HS256","kid":"rsa-1"}""", claims, input => HMACSHA256.HashData(pem, input))));
    }

    [Fact]
    public void AsymmetricToken_WithoutAJwks_IsRefused()
    {
        var snapshot = Snapshot();

        Assert.Equal(IdentifyFailure.UnsupportedAlgorithm, FailureOf(snapshot, TestJwt.Rs256(Rsa, TestJwt.Claims("acme", Now))));
        Assert.Equal(IdentifyFailure.UnsupportedAlgorithm, FailureOf(snapshot, TestJwt.Es256(Ec, TestJwt.Claims("acme", Now))));
    }

    [Fact]
    public void EmbeddedJwkOrJku_IsNeverUsedAsTheKey()
    {
        var snapshot = Snapshot(jwks: Jwks);
        var attackerJwk = TestJwt.RsaJwk(OtherRsa, kid: null);
        var header = $$"""{"alg":"RS256","jwk":{{attackerJwk}},"jku":"http://evil.example/jwks.json"}""";

        var token = TestJwt.Sign(header, TestJwt.Claims("acme", Now), input => OtherRsa.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));

        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, token));
    }

    [Fact]
    public void Kid_UnknownOrAmbiguous_IsRefused()
    {
        var twoRsaKeys = TestJwt.Jwks(TestJwt.RsaJwk(Rsa, "rsa-1"), TestJwt.RsaJwk(OtherRsa, "rsa-2"));
        var snapshot = Snapshot(jwks: twoRsaKeys);
        var claims = TestJwt.Claims("acme", Now);

        Assert.Equal(IdentifyFailure.UnknownKey, FailureOf(snapshot, TestJwt.Rs256(Rsa, claims, kid: "rsa-9")));
        Assert.Equal(IdentifyFailure.UnknownKey, FailureOf(snapshot, TestJwt.Rs256(Rsa, claims, kid: null)));
        Assert.Equal(IdentifyFailure.UnknownKey, FailureOf(snapshot, TestJwt.Rs256(Rsa, claims, header: $$"""{"alg":"RS256","kid":"{{new string('k', 300)}}"}""")));
        Assert.Equal(IdentifyFailure.None, FailureOf(snapshot, TestJwt.Rs256(OtherRsa, claims, kid: "rsa-2")));
        Assert.Equal(IdentifyFailure.BadSignature, FailureOf(snapshot, TestJwt.Rs256(OtherRsa, claims, kid: "rsa-1")));

        // The RSA key's kid does not name the EC key.
        var mixed = Snapshot(jwks: Jwks);
        Assert.Equal(IdentifyFailure.UnknownKey, FailureOf(mixed, TestJwt.Es256(Ec, claims, kid: "rsa-1")));
    }

    [Theory]
    [InlineData("\"iss\":\"https://idp.example\",\"aud\":\"gateway\"", "None")]
    [InlineData("\"iss\":\"https://idp.example\",\"aud\":[\"other\",\"gateway\"]", "None")]
    [InlineData("\"iss\":\"https://idp.example/\",\"aud\":\"gateway\"", "WrongIssuer")]
    [InlineData("\"iss\":\"https://evil.example\",\"aud\":\"gateway\"", "WrongIssuer")]
    [InlineData("\"aud\":\"gateway\"", "WrongIssuer")]
    [InlineData("\"iss\":[\"https://idp.example\"],\"aud\":\"gateway\"", "WrongIssuer")]
    [InlineData("\"iss\":\"https://idp.example\",\"aud\":\"gateway2\"", "WrongAudience")]
    [InlineData("\"iss\":\"https://idp.example\",\"aud\":[\"other\"]", "WrongAudience")]
    [InlineData("\"iss\":\"https://idp.example\",\"aud\":[]", "WrongAudience")]
    [InlineData("\"iss\":\"https://idp.example\"", "WrongAudience")]
    [InlineData("\"iss\":\"https:\\/\\/idp.example\",\"aud\":\"gatew\\u0061y\"", "None")]
    [InlineData("\"iss\":\"https://idp.example\",\"iss\":\"https://idp.example\",\"aud\":\"gateway\"", "MalformedToken")]
    public void IssuerAndAudience_MustMatchWhenConfigured(string claims, string expected)
    {
        var snapshot = Snapshot(jwt: "issuer = \"https://idp.example\"\naudience = \"gateway\"");

        Assert.Equal(expected, Failure(snapshot, TestJwt.Hs256(TestJwt.Claims("acme", Now, claims))));
    }

    [Fact]
    public void IssuerAndAudience_NotConfigured_AreNotChecked()
    {
        var snapshot = Snapshot();

        Assert.Equal(IdentifyFailure.None, FailureOf(snapshot, TestJwt.Hs256(TestJwt.Claims("acme", Now, "\"iss\":\"anyone\",\"aud\":[1,{\"x\":2}]"))));
    }

    [Theory]
    [InlineData("""{"tenant":"nobody","exp":EXP}""", "UnknownTenant")]
    [InlineData("""{"tenant":"ACME","exp":EXP}""", "UnknownTenant")]
    [InlineData("""{"exp":EXP}""", "MissingTenantClaim")]
    [InlineData("""{"tenant":7,"exp":EXP}""", "MissingTenantClaim")]
    [InlineData("""{"tenant":{"name":"acme"},"exp":EXP}""", "MissingTenantClaim")]
    [InlineData("""{"tenant":"acme","tenant":"beta","exp":EXP}""", "MalformedToken")]
    [InlineData("""{"tenant":"\u0061cme","exp":EXP}""", "None")]
    [InlineData("""{"tenant":"acme","class":"platinum","exp":EXP}""", "UnknownClass")]
    [InlineData("""{"tenant":"acme","class":5,"exp":EXP}""", "UnknownClass")]
    [InlineData("""{"tenant":"acme","other":{"nested":[1,2,{"tenant":"beta"}]},"exp":EXP}""", "None")]
    public void TenantAndClassClaims_MustNameConfiguredEntries(string claims, string expected)
    {
        var snapshot = Snapshot();

        var token = TestJwt.Hs256(claims.Replace("EXP", (Now.ToUnixTimeSeconds() + 60).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

        Assert.Equal(expected, Failure(snapshot, token));
    }

    [Fact]
    public void ClassClaim_OverridesTheTenantsClassAndItsPriority()
    {
        var snapshot = Snapshot();

        var caller = Identify(snapshot, "Bearer " + TestJwt.Hs256(TestJwt.Claims("acme", Now, "\"class\":\"gold\""))).Caller;

        Assert.Equal(("acme", "gold", 1), (caller.Tenant.Name, caller.Class.Name, caller.Priority));
    }

    [Fact]
    public void ClaimNames_AreConfigurable()
    {
        var snapshot = Snapshot(jwt: "tenant_claim = \"org\"\nclass_claim = \"tier\"");
        var exp = Now.ToUnixTimeSeconds() + 60;

        var caller = Identify(snapshot, "Bearer " + TestJwt.Hs256($$"""{"org":"beta","tier":"free","tenant":"acme","class":"gold","exp":{{exp}}}""")).Caller;

        Assert.Equal(("beta", "free", 5), (caller.Tenant.Name, caller.Class.Name, caller.Priority));

        // class_claim = "": a class in the token is ignored.
        var ignoring = Snapshot(jwt: "class_claim = \"\"");
        var plain = Identify(ignoring, "Bearer " + TestJwt.Hs256($$"""{"tenant":"acme","class":"nonsense","exp":{{exp}}}""")).Caller;
        Assert.Equal("free", plain.Class.Name);
    }

    [Fact]
    public void CritHeader_IsRefused()
    {
        var snapshot = Snapshot();

        var token = TestJwt.Hs256(TestJwt.Claims("acme", Now), """{"alg":"HS256","crit":["exp"],"exp":1}""");

        Assert.Equal(IdentifyFailure.UnsupportedHeader, FailureOf(snapshot, token));
    }

    // Theory rows name the failure: IdentifyFailure is internal, and a public test method cannot take it.
    private static string Failure(GatewaySnapshot snapshot, string token) => FailureOf(snapshot, token).ToString();

    public static TheoryData<string, string> Malformed()
    {
        var claims = TestJwt.Claims("acme", Now);
        var good = TestJwt.Hs256(claims);
        var parts = good.Split('.');
        string Signed(string header, string payload) => TestJwt.Sign(header, payload, input => HMACSHA256.HashData(Encoding.UTF8.GetBytes(TestJwt.Secret), input));
        return new()
        {
            { "", "MalformedToken" },
            { "a.b", "MalformedToken" },
            { parts[0] + "." + parts[1], "MalformedToken" },
            { good + ".x", "MalformedToken" },
            { ".." , "MalformedToken" },
            { "." + parts[1] + "." + parts[2], "MalformedToken" },
            { "a.b.c", "MalformedToken" },                         // one base64 char is no byte
            { parts[0] + "$." + parts[1] + "." + parts[2], "MalformedToken" },
            { parts[0] + "." + parts[1] + "." + parts[2] + "=", "MalformedToken" },
            { "eyJhbGciOiJIUzI1NiJ9 ." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("not json") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("[\"HS256\"]") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("{\"alg\":\"HS256\"") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("{\"alg\":\"HS256\"}{}") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("{\"typ\":\"JWT\"}") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("{\"alg\":256}") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("{\"alg\":\"HS256\",\"alg\":\"none\"}") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { TestJwt.Segment("{\"alg\":\"HS256\",\"kid\":1}") + "." + parts[1] + "." + parts[2], "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", "not json"), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", "[1,2]"), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", claims[..^1]), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", claims + "x"), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", claims.Replace("\"exp\"", "\"exp\":1,\"exp\"", StringComparison.Ordinal)), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", claims.Replace("\"exp\":", "\"exp\":1e999,\"x\":", StringComparison.Ordinal)), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", "\"string\""), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", new string('[', 100) + new string(']', 100)), "MalformedToken" },
            { Signed("{\"alg\":\"HS256\"}", "{\"tenant\":\"acme\",\"deep\":" + new string('[', 100) + new string(']', 100) + "}"), "MalformedToken" },
            { good + new string('A', JwtValidator.MaxTokenChars), "TokenTooLarge" },
            { Signed("{\"alg\":\"HS256\"}", "{\"tenant\":\"acme\",\"pad\":\"" + new string('x', 5000) + "\",\"exp\":" + (Now.ToUnixTimeSeconds() + 60) + "}"), "None" },
        };
    }

    // Text a JSON reader cannot turn into a string: invalid UTF-8, or an escaped lone surrogate, in
    // the header (read before the signature is checked) or in the claims of a token that is signed.
    // Each was an InvalidOperationException out of the validator, a 500 with a stack trace (issue 14).
    public static TheoryData<string, string> InvalidText()
    {
        var claims = TestJwt.Claims("acme", Now);
        byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);
        byte[] With(string before, byte[] middle, string after) => [.. Bytes(before), .. middle, .. Bytes(after)];
        string Header(string header) => TestJwt.Hs256(Bytes(claims), Bytes(header));
        string Claims(byte[] payload) => TestJwt.Hs256(payload, Bytes("{\"alg\":\"HS256\"}"));
        var exp = ",\"exp\":" + (Now.ToUnixTimeSeconds() + 60) + "}";
        return new()
        {
            { Header("{\"alg\":\"HS256\",\"kid\":\"\\ud800\"}"), "InvalidText" },
            { Header("{\"alg\":\"HS256\",\"kid\":\"a\\udc00\"}"), "InvalidText" },
            { Header("{\"alg\":\"HS256\",\"kid\":\"\\ud800\\u0041\"}"), "InvalidText" },
            { TestJwt.Hs256(Bytes(claims), With("{\"alg\":\"HS256\",\"kid\":\"", [0xFF, 0xFE], "\"}")), "InvalidText" },
            { TestJwt.Hs256(Bytes(claims), With("{\"alg\":\"HS256\",\"kid\":\"", [0xED, 0xA0, 0x80], "\"}")), "InvalidText" },
            { Header("{\"\\ud800\":1,\"alg\":\"HS256\"}"), "InvalidText" },
            { Header("{\"alg\":\"\\udfff\"}"), "InvalidText" },
            { Claims(With("{\"tenant\":\"", [0xC3, 0x28], "\"" + exp)), "InvalidText" },
            { Claims(Bytes("{\"tenant\":\"\\ud800\"" + exp)), "InvalidText" },
            { Claims(Bytes("{\"tenant\":\"acme\",\"iss\":\"\\ud800\"" + exp)), "InvalidText" },
            { Claims(Bytes("{\"tenant\":\"acme\",\"aud\":[\"x\",\"\\udc00\"]" + exp)), "InvalidText" },
            { Claims(Bytes("{\"tenant\":\"acme\",\"\\ud800\":1" + exp)), "InvalidText" },
            { Claims(With("{\"tenant\":\"acme\",\"sub\":\"", [0x80], "\"" + exp)), "InvalidText" },
            // A pair is a character like any other: it names no tenant, and the token fails for that.
            { Claims(Bytes("{\"tenant\":\"\\ud83d\\ude00\"" + exp)), "UnknownTenant" },
            { Header("{\"alg\":\"HS256\",\"kid\":\"\\ud83d\\ude00\"}"), "None" },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    [MemberData(nameof(InvalidText))]
    public void Validate_MalformedTokens_FailClearlyWithoutThrowing(string token, string expected)
    {
        var snapshot = Snapshot();
        var validator = new JwtValidator(
            snapshot.Jwt,
            snapshot.Tenants.ToFrozenDictionary(t => t.Name, StringComparer.Ordinal),
            snapshot.ClassesByName);

        var failure = validator.Validate(token, Now, out var tenant, out var tokenClass);

        Assert.Equal(expected, failure.ToString());
        Assert.Equal(expected == nameof(IdentifyFailure.None), tenant is not null);
        Assert.Null(tokenClass);
    }

    [Fact]
    public void Resolver_TokenThatIsNotJwtShaped_IsTreatedAsAnApiKey()
    {
        var snapshot = Snapshot();
        var good = TestJwt.Hs256(TestJwt.Claims("acme", Now));

        Assert.Equal(IdentifyFailure.InvalidApiKey, FailureOf(snapshot, good + ".x"));
        Assert.Equal(IdentifyFailure.InvalidApiKey, FailureOf(snapshot, "sk-nope"));
        Assert.Equal(IdentifyFailure.None, FailureOf(snapshot, AcmeKey));
        Assert.Equal(IdentitySource.ApiKey, Identify(snapshot, "Bearer " + AcmeKey).Caller.Source);
    }

    [Fact]
    public void Resolver_JwtOff_TreatsAJwtAsAnUnknownApiKey()
    {
        var snapshot = Snapshot(hs256: false);

        Assert.False(snapshot.Jwt.Enabled);
        Assert.Equal(IdentifyFailure.InvalidApiKey, FailureOf(snapshot, TestJwt.Hs256(TestJwt.Claims("acme", Now))));
    }

    [Fact]
    public void Verify_ConcurrentlyOnSharedKeys_AlwaysSucceeds()
    {
        var snapshot = Snapshot(jwks: Jwks);
        var tokens = new[]
        {
            TestJwt.Rs256(Rsa, TestJwt.Claims("acme", Now), "rsa-1"),
            TestJwt.Es256(Ec, TestJwt.Claims("acme", Now), "ec-1"),
            TestJwt.Hs256(TestJwt.Claims("acme", Now)),
        };
        var failures = 0;

        Parallel.For(0, 1200, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            if (FailureOf(snapshot, tokens[i % tokens.Length]) != IdentifyFailure.None)
            {
                Interlocked.Increment(ref failures);
            }
        });

        Assert.Equal(0, failures);
    }
}
