using System.Buffers.Text;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using AotProxy.Configuration;
using AotProxy.Identity;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Benchmarks;

// The identify stage per request, through the snapshot's CallerResolver: an API key, a JWT for
// each algorithm (a typical IdP access token, ~600 characters), and trusted headers.
// Results are returned as object: the types are internal, benchmark methods are public.
[MemoryDiagnoser]
public class IdentifyBenchmarks
{
    private const string SecretEnv = "AOTPROXY_BENCH_JWT_SECRET";
    private const string Secret = "bench-hs256-secret-0123456789-abcdefghij";

    private readonly TimeProvider _time = TimeProvider.System;
    private CallerResolver _resolver = null!;
    private DefaultHttpContext _apiKey = null!;
    private DefaultHttpContext _hs256 = null!;
    private DefaultHttpContext _rs256 = null!;
    private DefaultHttpContext _es256 = null!;
    private DefaultHttpContext _trusted = null!;

    [GlobalSetup]
    public void Setup()
    {
        Environment.SetEnvironmentVariable(SecretEnv, Secret);
        using var rsa = RSA.Create(2048);
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var jwks = Path.Combine(Path.GetTempPath(), $"aotproxy-bench-jwks-{Guid.NewGuid():N}.json");
        var rsaKey = rsa.ExportParameters(false);
        var ecKey = ec.ExportParameters(false);
        File.WriteAllText(jwks, $$"""
            {"keys":[
              {"kty":"RSA","kid":"r1","n":"{{Base64Url.EncodeToString(rsaKey.Modulus!)}}","e":"{{Base64Url.EncodeToString(rsaKey.Exponent!)}}"},
              {"kty":"EC","crv":"P-256","kid":"e1","x":"{{Base64Url.EncodeToString(ecKey.Q.X!)}}","y":"{{Base64Url.EncodeToString(ecKey.Q.Y!)}}"}
            ]}
            """);
        var loaded = ConfigLoader.Parse($$"""
            [[classes]]
            name = "gold"

            [[tenants]]
            name = "acme"
            class = "gold"
            api_key_sha256 = ["{{ApiKeyIndex.HashKey("sk-proj-00000001-abcdefghijklmnopqrstuvwxyz0123456")}}"]

            [auth]
            trusted_headers = true
            trusted_sources = ["10.0.0.0/8"]

            [jwt]
            hs256_secret_env = "{{SecretEnv}}"
            jwks_file = "{{jwks}}"
            issuer = "https://idp.example.com/realms/main"
            audience = "aotproxy"
            """, "<bench>", 1, TimeProvider.System);
        File.Delete(jwks);
        _resolver = loaded.Snapshot?.Callers ?? throw new InvalidOperationException(loaded.ToString());

        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        // Claims of the size Keycloak or Entra put in an access token, minus the role lists.
        var claims = $$"""{"exp":{{now + 3600}},"iat":{{now - 10}},"jti":"2f7c1a9e-5b8d-4c3f-9e2a-7d6b5c4a3f21","iss":"https://idp.example.com/realms/main","aud":["aotproxy","account"],"sub":"5d1c7e3a-2b9f-4a6e-8c1d-3f2e1a0b9c8d","typ":"Bearer","azp":"chat-frontend","scope":"openid profile email","email_verified":true,"tenant":"acme","class":"gold","preferred_username":"alice@example.com"}""";
        _apiKey = Context("Bearer sk-proj-00000001-abcdefghijklmnopqrstuvwxyz0123456", "127.0.0.1");
        _hs256 = Context("Bearer " + Sign("""{"alg":"HS256","typ":"JWT"}""", claims, d => HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), d)), "127.0.0.1");
        _rs256 = Context("Bearer " + Sign("""{"alg":"RS256","typ":"JWT","kid":"r1"}""", claims, d => rsa.SignData(d, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)), "127.0.0.1");
        _es256 = Context("Bearer " + Sign("""{"alg":"ES256","typ":"JWT","kid":"e1"}""", claims, d => ec.SignData(d, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)), "127.0.0.1");
        _trusted = Context(null, "10.1.2.3");
        _trusted.Request.Headers["x-tenant"] = "acme";
        _trusted.Request.Headers["x-customer-tier"] = "gold";
        _trusted.Request.Headers["x-priority"] = "3";
        foreach (var context in new[] { _apiKey, _hs256, _rs256, _es256, _trusted })
        {
            var result = _resolver.Identify(context, _time);
            if (!result.IsIdentified)
            {
                throw new InvalidOperationException($"not identified: {result.Failure}");
            }
        }
    }

    [Benchmark(Baseline = true)]
    public object ApiKey() => _resolver.Identify(_apiKey, _time).Caller.Tenant;

    [Benchmark]
    public object JwtHs256() => _resolver.Identify(_hs256, _time).Caller.Tenant;

    [Benchmark]
    public object JwtRs256() => _resolver.Identify(_rs256, _time).Caller.Tenant;

    [Benchmark]
    public object JwtEs256() => _resolver.Identify(_es256, _time).Caller.Tenant;

    [Benchmark]
    public object TrustedHeaders() => _resolver.Identify(_trusted, _time).Caller.Tenant;

    private static DefaultHttpContext Context(string? authorization, string remote)
    {
        var context = new DefaultHttpContext();
        if (authorization is not null)
        {
            context.Request.Headers.Authorization = authorization;
        }

        context.Connection.RemoteIpAddress = IPAddress.Parse(remote);
        return context;
    }

    private static string Sign(string header, string claims, Func<byte[], byte[]> sign)
    {
        var signed = Base64Url.EncodeToString(Encoding.UTF8.GetBytes(header)) + "." + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(claims));
        return signed + "." + Base64Url.EncodeToString(sign(Encoding.ASCII.GetBytes(signed)));
    }
}
