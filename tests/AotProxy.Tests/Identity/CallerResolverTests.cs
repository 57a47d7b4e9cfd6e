using AotProxy.Identity;
using static AotProxy.Tests.Identity.IdentitySetup;

namespace AotProxy.Tests.Identity;

// Trusted headers and the default class: what a request without a key or a JWT resolves to.
public sealed class CallerResolverTests
{
    private const string TrustLoopback = "trusted_headers = true\ntrusted_sources = [\"127.0.0.0/8\", \"fd00::/8\"]";

    [Fact]
    public void ApiKey_ResolvesToTheTenantsClassPriorityAndEnvironment()
    {
        var snapshot = Snapshot();

        var result = Identify(snapshot, "Bearer " + AcmeKey);

        Assert.True(result.IsIdentified);
        Assert.Equal(("acme", "free", 5, "prod", IdentitySource.ApiKey), (result.Caller.Tenant.Name, result.Caller.Class.Name, result.Caller.Priority, result.Caller.Environment, result.Caller.Source));
        Assert.Equal(IdentifyFailure.InvalidApiKey, Identify(snapshot, "Bearer sk-wrong").Failure);
        Assert.Equal(IdentifyFailure.InvalidApiKey, Identify(snapshot, "Basic YWNtZTp4").Failure);
        Assert.Equal(IdentifyFailure.MissingCredentials, Identify(snapshot).Failure);
    }

    // Anthropic's clients send x-api-key: the same key store, on /v1/messages only (apiKeyHeader),
    // and Authorization wins when both come.
    [Fact]
    public void XApiKey_OnlyWhereAccepted_ResolvesLikeABearerKey()
    {
        var snapshot = Snapshot();
        IdentifyResult Identify(bool accepted, string? authorization, string apiKey)
        {
            var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
            context.Request.Headers["x-api-key"] = apiKey;
            if (authorization is not null)
            {
                context.Request.Headers.Authorization = authorization;
            }

            return snapshot.Callers.Identify(context, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(Now), accepted);
        }

        var result = Identify(accepted: true, null, AcmeKey);
        Assert.True(result.IsIdentified);
        Assert.Equal(("acme", IdentitySource.ApiKey), (result.Caller.Tenant.Name, result.Caller.Source));
        Assert.Equal(IdentifyFailure.InvalidApiKey, Identify(accepted: true, null, "sk-wrong").Failure);
        Assert.Equal(IdentifyFailure.MissingCredentials, Identify(accepted: false, null, AcmeKey).Failure);
        Assert.Equal(IdentifyFailure.InvalidApiKey, Identify(accepted: true, "Bearer sk-wrong", AcmeKey).Failure);
        Assert.False(AotProxy.Forwarding.HeaderPolicy.ForwardToUpstream("X-Api-Key", trustedProxy: true)); // never reaches a worker
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.8.9.10")]
    [InlineData("::ffff:127.0.0.1")] // an IPv4 client on a dual-stack listener
    [InlineData("fd00::5")]
    public void TrustedHeaders_FromATrustedSource_NameTenantClassAndPriority(string remote)
    {
        var snapshot = Snapshot(auth: TrustLoopback);

        var result = Identify(snapshot, null, remote, ("x-tenant", "acme"), ("x-customer-tier", "gold"), ("x-priority", "3"));

        Assert.True(result.IsIdentified, result.Failure.ToString());
        Assert.Equal(("acme", "gold", 3, "prod", IdentitySource.TrustedHeaders), (result.Caller.Tenant.Name, result.Caller.Class.Name, result.Caller.Priority, result.Caller.Environment, result.Caller.Source));
        Assert.True(result.Caller.PriorityFromHeader); // so a time window's priority does not replace it
    }

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("128.0.0.1")]
    [InlineData("::1")]                 // loopback, but IPv6: 127.0.0.0/8 does not cover it
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("fe80::1")]
    [InlineData("::127.0.0.1")]         // IPv4-compatible (deprecated), not IPv4-mapped
    [InlineData(null)]                  // no TCP peer at all
    public void TrustedHeaders_FromAnUntrustedSource_AreIgnored(string? remote)
    {
        var snapshot = Snapshot(auth: TrustLoopback);
        (string, string)[] headers = [("x-tenant", "acme"), ("x-customer-tier", "gold"), ("x-priority", "0")];

        Assert.Equal(IdentifyFailure.MissingCredentials, Identify(snapshot, null, remote, headers).Failure);

        // With a key, the key's tenant keeps its own class and priority.
        var keyed = Identify(snapshot, "Bearer " + AcmeKey, remote, headers);
        Assert.True(keyed.IsIdentified);
        Assert.Equal(("acme", "free", 5), (keyed.Caller.Tenant.Name, keyed.Caller.Class.Name, keyed.Caller.Priority));
        Assert.False(keyed.Caller.PriorityFromHeader);

        // Invalid values are ignored too, not reported: from there the headers do not exist.
        Assert.True(Identify(snapshot, "Bearer " + AcmeKey, remote, ("x-priority", "urgent"), ("x-customer-tier", "platinum")).IsIdentified);
    }

    [Fact]
    public void TrustedHeaders_Off_AreIgnoredEvenFromAListedSource()
    {
        var snapshot = Snapshot(auth: "trusted_headers = false\ntrusted_sources = [\"127.0.0.0/8\"]");

        Assert.Equal(IdentifyFailure.MissingCredentials, Identify(snapshot, null, "127.0.0.1", ("x-tenant", "acme")).Failure);
        Assert.Equal("free", Identify(snapshot, "Bearer " + AcmeKey, "127.0.0.1", ("x-customer-tier", "gold")).Caller.Class.Name);
    }

    [Fact]
    public void TrustedHeaders_AreOffByDefault()
    {
        var snapshot = Snapshot();

        Assert.False(snapshot.Auth.TrustedHeaders);
        Assert.Equal(IdentifyFailure.MissingCredentials, Identify(snapshot, null, "127.0.0.1", ("x-tenant", "acme")).Failure);
    }

    [Fact]
    public void TrustedHeaders_OverrideTheClassOfKeyAndJwtCallers_ButNotTheirTenant()
    {
        var snapshot = Snapshot(auth: TrustLoopback);

        var keyed = Identify(snapshot, "Bearer " + AcmeKey, "127.0.0.1", ("x-tenant", "beta"), ("x-customer-tier", "gold"));
        Assert.Equal(("acme", "gold", 1, IdentitySource.ApiKey), (keyed.Caller.Tenant.Name, keyed.Caller.Class.Name, keyed.Caller.Priority, keyed.Caller.Source));
        Assert.False(keyed.Caller.PriorityFromHeader); // x-customer-tier alone: the class's priority, which windows may change

        var jwt = Identify(snapshot, "Bearer " + TestJwt.Hs256(TestJwt.Claims("beta", Now)), "127.0.0.1", ("x-priority", "7"));
        Assert.Equal(("beta", "gold", 7, IdentitySource.Jwt), (jwt.Caller.Tenant.Name, jwt.Caller.Class.Name, jwt.Caller.Priority, jwt.Caller.Source));
    }

    [Theory]
    [InlineData("x-tenant", "nobody", "InvalidTenantHeader")]
    [InlineData("x-tenant", "  ", "InvalidTenantHeader")]
    [InlineData("x-customer-tier", "platinum", "InvalidTierHeader")]
    [InlineData("x-priority", "10", "InvalidPriorityHeader")]
    [InlineData("x-priority", "-1", "InvalidPriorityHeader")]
    [InlineData("x-priority", "high", "InvalidPriorityHeader")]
    [InlineData("x-priority", "1.5", "InvalidPriorityHeader")]
    [InlineData("x-priority", "99999999999", "InvalidPriorityHeader")]
    [InlineData("x-priority", " 4 ", "None")]
    [InlineData("x-customer-tier", " gold", "None")]
    public void TrustedHeaders_WithBadValuesFromATrustedSource_Fail(string header, string value, string expected)
    {
        var snapshot = Snapshot(auth: TrustLoopback);
        var headers = header == "x-tenant" ? new[] { (header, value) } : new[] { ("x-tenant", "acme"), (header, value) };

        Assert.Equal(expected, Identify(snapshot, null, "127.0.0.1", headers).Failure.ToString());
    }

    [Fact]
    public void TrustedHeaders_RepeatedHeader_Fails()
    {
        var snapshot = Snapshot(auth: TrustLoopback);

        Assert.Equal(IdentifyFailure.InvalidTenantHeader, Identify(snapshot, null, "127.0.0.1", ("x-tenant", "acme"), ("x-tenant", "beta")).Failure);
        Assert.Equal(IdentifyFailure.InvalidPriorityHeader, Identify(snapshot, null, "127.0.0.1", ("x-tenant", "acme"), ("x-priority", "1"), ("x-priority", "2")).Failure);
    }

    [Fact]
    public void DefaultClass_On_ServesRequestsWithoutCredentialsAsAnonymous()
    {
        var snapshot = Snapshot(auth: "default_class = \"free\"");

        var result = Identify(snapshot);

        Assert.True(result.IsIdentified);
        var caller = result.Caller;
        Assert.Equal(("anonymous", "free", 5, "", IdentitySource.Anonymous), (caller.Tenant.Name, caller.Class.Name, caller.Priority, caller.Environment, caller.Source));
        Assert.True(caller.Tenant.AllowsModel("any-model"));
        Assert.Equal((0, 0, 0), (caller.Tenant.Rpm, caller.Tenant.Tpm, caller.Tenant.MaxInFlight));
    }

    [Fact]
    public void DefaultClass_WrongCredentials_AreStill401()
    {
        var snapshot = Snapshot(auth: "default_class = \"free\"");

        Assert.Equal(IdentifyFailure.InvalidApiKey, Identify(snapshot, "Bearer sk-wrong").Failure);
        Assert.Equal(IdentifyFailure.InvalidApiKey, Identify(snapshot, "").Failure);
        Assert.Equal(IdentifyFailure.Expired, Identify(snapshot, "Bearer " + TestJwt.Hs256(TestJwt.Claims("acme", Now, exp: Now.ToUnixTimeSeconds() - 3600))).Failure);
    }

    [Fact]
    public void DefaultClass_Off_RequestsWithoutCredentialsAre401()
    {
        var snapshot = Snapshot(auth: "default_class = \"\"");

        Assert.Equal(IdentifyFailure.MissingCredentials, Identify(snapshot).Failure);
    }

    [Fact]
    public void DefaultClass_AnAnonymousTenantEntry_LendsItsModelsAndLimits()
    {
        var snapshot = Snapshot(auth: "default_class = \"gold\"", tenants: """

            [[tenants]]
            name = "anonymous"
            class = "free"
            models = ["small-model"]
            rpm = 10
            environment = "public"
            """);

        var caller = Identify(snapshot).Caller;

        Assert.Equal(("anonymous", "gold", 1, "public", 10L), (caller.Tenant.Name, caller.Class.Name, caller.Priority, caller.Environment, caller.Tenant.Rpm));
        Assert.True(caller.Tenant.AllowsModel("small-model"));
        Assert.False(caller.Tenant.AllowsModel("big-model"));
    }

    [Fact]
    public void DefaultClass_FromATrustedSource_TakesTheHeaderOverrides()
    {
        var snapshot = Snapshot(auth: "default_class = \"free\"\n" + TrustLoopback);

        var caller = Identify(snapshot, null, "127.0.0.1", ("x-customer-tier", "gold")).Caller;
        Assert.Equal(("anonymous", "gold", IdentitySource.Anonymous), (caller.Tenant.Name, caller.Class.Name, caller.Source));

        var untrusted = Identify(snapshot, null, "10.0.0.1", ("x-customer-tier", "gold")).Caller;
        Assert.Equal("free", untrusted.Class.Name);
    }
}
