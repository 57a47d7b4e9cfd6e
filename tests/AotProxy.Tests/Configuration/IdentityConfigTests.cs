using System.Net;
using AotProxy.Configuration;
using AotProxy.Identity;
using AotProxy.Tests.Identity;

namespace AotProxy.Tests.Configuration;

// [auth], [jwt] and the tenants' environment: each broken rule is one error with its key and line.
public sealed class IdentityConfigTests
{
    private const string Classes = "[[classes]]\nname = \"free\"\n";

    [Theory]
    [InlineData("[auth]\ntrusted_sources = [\"10.0.0.0/33\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_sources = [\n  \"10.0.0.0/8\",\n  \"10.1.2.3/8\",\n]", 4, "auth.trusted_sources[1]")]
    [InlineData("[auth]\ntrusted_sources = [\"10/8\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_sources = [\"10.0.0\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_sources = [\"proxy.internal\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_sources = [\"fe80::1%eth0\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_sources = [\"fd00::/129\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_sources = [\"10.0.0.0/-8\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_sources = [\"\"]", 2, "auth.trusted_sources[0]")]
    [InlineData("[auth]\ntrusted_headers = true", 2, "auth.trusted_headers")]
    [InlineData("[auth]\ntrusted_headers = true\ntrusted_sources = []", 2, "auth.trusted_headers")]
    [InlineData("[auth]\ndefault_class = \"gold\"", 2, "auth.default_class")]
    [InlineData(Classes + "[auth]\ndefault_class = \"default\"", 4, "auth.default_class")]
    [InlineData("[auth]\ndefualt_class = \"\"", 2, "auth.defualt_class")]
    [InlineData("[auth]\ntrusted_headers = \"yes\"", 2, "auth.trusted_headers")]
    [InlineData("[[auth]]\ndefault_class = \"\"", 1, "auth")]
    [InlineData("[jwt]\nhs256_secret_env = \"AOTPROXY_TEST_NEVER_SET_8d1f\"", 2, "jwt.hs256_secret_env")]
    [InlineData("[jwt]\nhs256_secret_env = \"AOTPROXY_TEST_SHORT_SECRET\"", 2, "jwt.hs256_secret_env")]
    [InlineData("[jwt]\njwks_file = \"/nonexistent/aotproxy/jwks.json\"", 2, "jwt.jwks_file")]
    [InlineData("[jwt]\njwks_file = \"/\"", 2, "jwt.jwks_file")]
    [InlineData("[jwt]\nissuer = \"https://idp.example\"", 2, "jwt.issuer")]
    [InlineData("[jwt]\naudience = \"gateway\"", 2, "jwt.audience")]
    [InlineData("[jwt]\ntenant_claim = \"\"", 2, "jwt.tenant_claim")]
    [InlineData("[jwt]\ntenant_claim = \"exp\"", 2, "jwt.tenant_claim")]
    [InlineData("[jwt]\nclass_claim = \"aud\"", 2, "jwt.class_claim")]
    [InlineData("[jwt]\nclass_claim = \"tenant\"", 2, "jwt.class_claim")]
    [InlineData("[jwt]\nclock_skew = \"soon\"", 2, "jwt.clock_skew")]
    [InlineData("[jwt]\nclock_skew = \"11m\"", 2, "jwt.clock_skew")]
    [InlineData("[jwt]\nhs256_secret = \"inline\"", 2, "jwt.hs256_secret")]
    [InlineData("[[tenants]]\nname = \"t\"\nenvironment = 5", 3, "tenants[0].environment")]
    public void Parse_InvalidIdentityValue_ReportsKeyAndLine(string toml, int line, string key)
    {
        Environment.SetEnvironmentVariable("AOTPROXY_TEST_SHORT_SECRET", "only-31-bytes-long-0123456789ab");

        var error = TestConfig.SingleError(toml);

        Assert.Equal((line, key), (error.Line, error.Key));
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Theory]
    [InlineData("not json", "invalid JSON, or a member of the wrong type, at line 1")]
    [InlineData("{\n\"keys\": [\n{\"kty\": \"RSA\",}\n]}", "at line 3")]
    [InlineData("[]", "invalid JSON")]
    [InlineData("{}", "{\"keys\": [...]}")]
    [InlineData("{\"keys\": []}", "no RS256 or ES256 signing key")]
    [InlineData("{\"keys\": [{\"kty\": \"RSA\", \"use\": \"enc\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}", "no RS256 or ES256 signing key")]
    [InlineData("{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"AQAB\"}]}", "no RS256 or ES256 signing key")]
    [InlineData("{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"k1\", \"n\": \"not base64!\", \"e\": \"AQAB\"}]}", "keys[0] (kid \"k1\"): an RSA key needs")]
    [InlineData("{\"keys\": [{\"kty\": \"RSA\", \"e\": \"AQAB\"}]}", "keys[0]: an RSA key needs")]
    [InlineData("{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AQAB\", \"y\": \"AQAB\"}]}", "32 bytes each")]
    [InlineData("{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \"y\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}", "not on the P-256 curve")]
    public void Parse_BrokenJwks_IsAnErrorOnJwksFile(string json, string expected)
    {
        var path = IdentitySetup.WriteJwks(json);
        try
        {
            var error = TestConfig.SingleError($"[jwt]\njwks_file = \"{path}\"");

            Assert.Equal((2, "jwt.jwks_file"), (error.Line, error.Key));
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Parse_JwksWithWeakOrDuplicateKeys_IsRefused()
    {
        using var weak = System.Security.Cryptography.RSA.Create(1024);
        AssertJwksError(TestJwt.Jwks(TestJwt.RsaJwk(weak, "old")), "1024 bits");
        AssertJwksError(TestJwt.Jwks(TestJwt.RsaJwk(IdentitySetup.Rsa, "k"), TestJwt.RsaJwk(IdentitySetup.OtherRsa, "k")), "kid \"k\" is used twice");
        AssertJwksError(TestJwt.Jwks(TestJwt.EcJwk(IdentitySetup.Ec, null), TestJwt.EcJwk(IdentitySetup.OtherEc, null)), "without a kid");
    }

    [Fact]
    public void Parse_JwksFromAnIdp_KeepsItsSigningKeysAndSkipsTheRest()
    {
        var json = TestJwt.Jwks(
            TestJwt.RsaJwk(IdentitySetup.Rsa, "sig-rsa"),
            """{"kty":"RSA","use":"enc","kid":"enc-rsa","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}""",
            """{"kty":"EC","crv":"P-384","kid":"p384","x":"AQAB","y":"AQAB"}""",
            """{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"AQAB"}""",
            """{"kty":"oct","kid":"sym","k":"c2VjcmV0"}""",
            """{"kty":"RSA","kid":"ps","alg":"PS256","n":"AQAB","e":"AQAB"}""",
            TestJwt.EcJwk(IdentitySetup.Ec, "sig-ec").Replace("{", "{\"alg\":\"ES256\",\"key_ops\":[\"verify\"],", StringComparison.Ordinal));
        var snapshot = IdentitySetup.Snapshot(jwks: json, hs256: false);

        Assert.Equal([("sig-rsa", JwtAlgorithm.Rs256), ("sig-ec", JwtAlgorithm.Es256)], snapshot.Jwt.Keys.Select(k => (k.Kid, k.Algorithm)));
        Assert.True(snapshot.Jwt.Enabled);
        Assert.True(snapshot.Jwt.Hs256Secret.IsEmpty);
    }

    [Fact]
    public void LoadFile_RelativeJwksPath_IsReadBesideTheConfigAndReReadOnReload()
    {
        var directory = Directory.CreateTempSubdirectory("aotproxy-jwks-");
        try
        {
            var config = Path.Combine(directory.FullName, "aotproxy.toml");
            File.WriteAllText(config, IdentitySetup.Toml(jwt: "jwks_file = \"keys/jwks.json\""));
            Directory.CreateDirectory(Path.Combine(directory.FullName, "keys"));
            var jwks = Path.Combine(directory.FullName, "keys", "jwks.json");
            File.WriteAllText(jwks, TestJwt.Jwks(TestJwt.RsaJwk(IdentitySetup.Rsa, "one")));

            var first = ConfigLoader.LoadFile(config, 1, new FakeTimeProvider(TestConfig.Now));
            Assert.True(first.IsValid, first.ToString());
            Assert.Equal("one", Assert.Single(first.Snapshot.Jwt.Keys).Kid);

            File.WriteAllText(jwks, TestJwt.Jwks(TestJwt.RsaJwk(IdentitySetup.Rsa, "two")));
            var second = ConfigLoader.LoadFile(config, 2, new FakeTimeProvider(TestConfig.Now));
            Assert.True(second.IsValid, second.ToString());
            Assert.Equal("two", Assert.Single(second.Snapshot.Jwt.Keys).Kid);

            File.Delete(jwks);
            var third = ConfigLoader.LoadFile(config, 3, new FakeTimeProvider(TestConfig.Now));
            var error = Assert.Single(third.Errors);
            Assert.Equal("jwt.jwks_file", error.Key);
            Assert.Contains(jwks, error.Message, StringComparison.Ordinal);
            Assert.Contains("no such file", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Parse_EveryIdentityKey_ReachesTheModel()
    {
        var snapshot = IdentitySetup.Snapshot(
            auth: "default_class = \"gold\"\ntrusted_headers = true\ntrusted_sources = [\"10.0.0.0/8\", \"192.168.1.7\", \"fd00::/8\", \"::ffff:172.16.0.0/108\"]",
            jwt: "issuer = \"https://idp.example\"\naudience = \"gateway\"\ntenant_claim = \"org\"\nclass_claim = \"tier\"\nclock_skew = \"5s\"");

        Assert.Equal("gold", snapshot.Auth.DefaultClass);
        Assert.True(snapshot.Auth.TrustedHeaders);
        Assert.Equal(
            new[] { IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("192.168.1.7/32"), IPNetwork.Parse("fd00::/8"), IPNetwork.Parse("172.16.0.0/12") },
            snapshot.Auth.TrustedSources.ToArray());
        var jwt = snapshot.Jwt;
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(TestJwt.Secret), jwt.Hs256Secret.ToArray());
        Assert.Equal(("https://idp.example", "gateway", "org", "tier", TimeSpan.FromSeconds(5)), (jwt.Issuer, jwt.Audience, jwt.TenantClaim, jwt.ClassClaim, jwt.ClockSkew));
        Assert.Equal("prod", snapshot.Tenants.Single(t => t.Name == "acme").Environment);
        Assert.Equal("", snapshot.Tenants.Single(t => t.Name == "beta").Environment);
    }

    [Fact]
    public void Parse_NoAuthOrJwt_IsOffWithTheDocumentedDefaults()
    {
        var snapshot = TestConfig.Valid("");

        Assert.Equal(("", false, 0), (snapshot.Auth.DefaultClass, snapshot.Auth.TrustedHeaders, snapshot.Auth.TrustedSources.Length));
        Assert.False(snapshot.Jwt.Enabled);
        Assert.Equal(("tenant", "class", TimeSpan.FromSeconds(30)), (snapshot.Jwt.TenantClaim, snapshot.Jwt.ClassClaim, snapshot.Jwt.ClockSkew));
        Assert.False(snapshot.Callers.JwtEnabled);
    }

    [Fact]
    public void Parse_SeveralIdentityProblems_AreAllReported()
    {
        var result = TestConfig.Load("[auth]\ndefault_class = \"x\"\ntrusted_headers = true\n\n[jwt]\njwks_file = \"/nonexistent.json\"\nclock_skew = \"1h\"\n");

        Assert.Equal(
            [(2, "auth.default_class"), (3, "auth.trusted_headers"), (6, "jwt.jwks_file"), (7, "jwt.clock_skew")],
            result.Errors.Select(e => (e.Line, e.Key)));
    }

    private static void AssertJwksError(string json, string expected)
    {
        var path = IdentitySetup.WriteJwks(json);
        try
        {
            var error = TestConfig.SingleError($"[jwt]\njwks_file = \"{path}\"");
            Assert.Equal("jwt.jwks_file", error.Key);
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // Issue 15, item 3: the loader reads the environment and the JWKS file; the validator checks
    // what it is given and reads neither (here the variable is unset and the file does not exist).
    [Fact]
    public void Validate_TakesTheSecretAndKeysItIsGiven_AndReadsNothingItself()
    {
        Assert.True(JwksReader.TryParse(System.Text.Encoding.UTF8.GetBytes(TestJwt.Jwks(TestJwt.RsaJwk(IdentitySetup.Rsa, "given"))), "given.json", out var keys, out var parseError), parseError);
        var config = new GatewayConfig { Jwt = new JwtConfig { Hs256SecretEnv = "AOTPROXY_TEST_NEVER_SET_8d1f", JwksFile = "/nonexistent/aotproxy/jwks.json" } };
        var secret = new string('s', 32);

        var valid = ConfigValidator.Validate(config, new ConfigInputs(secret, keys, null), TomlKeyMap.Build(""), "<test>", 1, TestConfig.Now);
        var unread = ConfigValidator.Validate(config, new ConfigInputs(null, [], "cannot read the key set"), TomlKeyMap.Build(""), "<test>", 1, TestConfig.Now);

        Assert.True(valid.IsValid, valid.ToString());
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(secret), valid.Snapshot.Jwt.Hs256Secret.ToArray());
        Assert.Equal("given", Assert.Single(valid.Snapshot.Jwt.Keys).Kid);
        Assert.Equal(
            [("jwt.hs256_secret_env", "the environment variable AOTPROXY_TEST_NEVER_SET_8d1f is not set or empty; it must hold the HS256 secret"), ("jwt.jwks_file", "cannot read the key set")],
            unread.Errors.Select(e => (e.Key, e.Message)));
    }
}
