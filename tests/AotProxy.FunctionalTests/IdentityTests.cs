using System.Net;
using System.Net.Http.Headers;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Identification through the real gateway on loopback: trusted headers from the connection's
// address (127.0.0.1 here), the default class, and a JWT on /v1/models.
public class IdentityTests
{
    private const string Classes = """

        [[classes]]
        name = "default"
        priority = 2

        [[classes]]
        name = "gold"
        priority = 0
        weight = 10

        """;

    [Fact]
    public async Task TrustedHeaders_FromATrustedLoopback_IdentifyTheTenantAndItsTier()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: Classes + """
            [auth]
            trusted_headers = true
            trusted_sources = ["127.0.0.0/8"]
            """);

        using var response = await gateway.Client.SendAsync(WithTrustedHeaders(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4), key: null)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var metrics = await gateway.MetricsAfterAsync(1);
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "class=\"gold\"", "status=\"200\""));
        Assert.True(MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\"") > 0);

        // A key still names its own tenant; the trusted tier applies to it as well.
        using var keyed = await gateway.Client.SendAsync(WithTrustedHeaders(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4), key: TestGateway.LimitedKey)));
        Assert.Equal(HttpStatusCode.Forbidden, keyed.StatusCode); // "limited" may not use the model, whatever x-tenant says

        using var bad = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        bad.Headers.TryAddWithoutValidation("x-tenant", "nobody");
        using var badResponse = await gateway.Client.SendAsync(bad);
        Assert.Equal(HttpStatusCode.Unauthorized, badResponse.StatusCode);
        Assert.Contains("invalid_trusted_header", await badResponse.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TrustedHeaders_FromLoopback_WhenOnlyOtherNetworksAreTrusted_AreIgnored()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: Classes + """
            [auth]
            trusted_headers = true
            trusted_sources = ["10.0.0.0/8", "::1"]
            """);

        using var response = await gateway.Client.SendAsync(WithTrustedHeaders(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4), key: null)));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("invalid_api_key", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // With a key, the untrusted tier header changes nothing: the request counts in the tenant's own class.
        using var keyed = await gateway.Client.SendAsync(WithTrustedHeaders(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4))));
        Assert.Equal(HttpStatusCode.OK, keyed.StatusCode);
        var metrics = await gateway.MetricsAfterAsync(2); // the 401 and the 200
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "class=\"default\"", "status=\"200\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_requests_total", "class=\"gold\""));
    }

    [Fact]
    public async Task DefaultClass_ServesRequestsWithoutAKeyAsTenantAnonymous()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: Classes + """
            [auth]
            default_class = "gold"
            """);

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4), key: null));
        using var wrongKey = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4), key: "sk-wrong"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode); // a wrong key is never downgraded to anonymous
        var metrics = await gateway.MetricsAfterAsync(2);
        Assert.True(MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"anonymous\"", "kind=\"completion\"") > 0);
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "class=\"gold\"", "status=\"200\""));
    }

    [Fact]
    public async Task DefaultClass_Off_RequestsWithoutAKeyAre401()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);

        using var response = await gateway.Client.GetAsync("v1/models");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Models_WithAJwt_ListsWhatTheTokensTenantMayUse()
    {
        const string secretEnv = "AOTPROXY_FUNCTIONAL_JWT_SECRET";
        Environment.SetEnvironmentVariable(secretEnv, TestJwt.Secret);
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: $"\n[jwt]\nhs256_secret_env = \"{secretEnv}\"\naudience = \"aotproxy\"\n");
        var now = DateTimeOffset.UtcNow;

        async Task<(HttpStatusCode Status, string Body)> Models(string token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await gateway.Client.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var acme = await Models(TestJwt.Hs256(TestJwt.Claims("acme", now, "\"aud\":\"aotproxy\"")));
        var limited = await Models(TestJwt.Hs256(TestJwt.Claims("limited", now, "\"aud\":[\"aotproxy\"]")));
        var wrongAudience = await Models(TestJwt.Hs256(TestJwt.Claims("acme", now, "\"aud\":\"someone-else\"")));

        Assert.Equal(HttpStatusCode.OK, acme.Status);
        Assert.Contains(TestGateway.Model, acme.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, limited.Status);
        Assert.DoesNotContain(TestGateway.Model, limited.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongAudience.Status);
        Assert.Contains("audience", wrongAudience.Body, StringComparison.Ordinal);
    }

    private static HttpRequestMessage WithTrustedHeaders(HttpRequestMessage request)
    {
        request.Headers.TryAddWithoutValidation("x-tenant", "acme");
        request.Headers.TryAddWithoutValidation("x-customer-tier", "gold");
        request.Headers.TryAddWithoutValidation("x-priority", "0");
        return request;
    }
}
