using System.Net;
using System.Security.Cryptography;
using AotProxy.Configuration;
using AotProxy.Identity;
using AotProxy.Tests.Configuration;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Tests.Identity;

// A config with two classes and two tenants, [auth] and [jwt] as a test needs them, loaded
// through the real loader and validator, and requests identified through the snapshot's resolver.
internal static class IdentitySetup
{
    public const string SecretEnv = "AOTPROXY_TEST_JWT_SECRET";
    public const string AcmeKey = "sk-acme-identity";

    // Generated once per test run: 2048-bit RSA takes tens of milliseconds.
    public static readonly RSA Rsa = RSA.Create(2048);
    public static readonly RSA OtherRsa = RSA.Create(2048);
    public static readonly ECDsa Ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    public static readonly ECDsa OtherEc = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    static IdentitySetup() => Environment.SetEnvironmentVariable(SecretEnv, TestJwt.Secret);

    public static DateTimeOffset Now => TestConfig.Now;

    public static string Toml(string auth = "", string jwt = "", string tenants = "") => $"""
        [[classes]]
        name = "free"
        priority = 5

        [[classes]]
        name = "gold"
        priority = 1
        weight = 10

        [[tenants]]
        name = "acme"
        class = "free"
        environment = "prod"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(AcmeKey)}"]

        [[tenants]]
        name = "beta"
        class = "gold"
        {tenants}
        [auth]
        {auth}

        [jwt]
        {jwt}
        """;

    // HS256 with the test secret, plus the JWKS given (written to a file that is gone again once loaded).
    public static GatewaySnapshot Snapshot(string auth = "", string jwt = "", string? jwks = null, string tenants = "", bool hs256 = true)
    {
        var path = jwks is null ? null : WriteJwks(jwks);
        try
        {
            var keys = (hs256 ? $"hs256_secret_env = \"{SecretEnv}\"\n" : "") + (path is null ? "" : $"jwks_file = \"{path}\"\n");
            return TestConfig.Valid(Toml(auth, keys + jwt, tenants));
        }
        finally
        {
            if (path is not null)
            {
                File.Delete(path);
            }
        }
    }

    public static string WriteJwks(string json)
    {
        var path = Path.Combine(Path.GetTempPath(), $"aotproxy-jwks-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    public static IdentifyResult Identify(GatewaySnapshot snapshot, string? authorization = null, string? remote = "127.0.0.1", params (string Name, string Value)[] headers) =>
        Identify(snapshot, Now, authorization, remote, headers);

    public static IdentifyResult Identify(GatewaySnapshot snapshot, DateTimeOffset now, string? authorization, string? remote, params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        if (authorization is not null)
        {
            context.Request.Headers.Authorization = authorization;
        }

        context.Connection.RemoteIpAddress = remote is null ? null : IPAddress.Parse(remote);
        foreach (var (name, value) in headers)
        {
            context.Request.Headers.Append(name, value);
        }

        return snapshot.Callers.Identify(context, new FakeTimeProvider(now));
    }

    public static IdentifyFailure FailureOf(GatewaySnapshot snapshot, string token) =>
        Identify(snapshot, "Bearer " + token).Failure;
}
