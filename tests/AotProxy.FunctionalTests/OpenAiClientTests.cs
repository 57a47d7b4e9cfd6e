using System.ClientModel;
using AotProxy.FunctionalTests.Support;
using OpenAI;
using OpenAI.Chat;

namespace AotProxy.FunctionalTests;

// The official OpenAI .NET client, pointed at the gateway, against simulated vLLM workers.
public class OpenAiClientTests
{
    [Fact]
    public async Task CompleteChat_NonStreaming_ReturnsTheAnswerAndCountsItsTokens()
    {
        await using var gateway = await TestGateway.StartAsync();
        var client = Client(gateway, TestGateway.Key);

        ChatCompletion completion = await client.CompleteChatAsync(
            [new UserChatMessage("Write a haiku about GPUs.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 24 });

        Assert.False(string.IsNullOrWhiteSpace(completion.Content[0].Text));
        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.InRange(completion.Usage.OutputTokenCount, 1, 24);
        var metrics = await gateway.MetricsAfterAsync(1);
        Assert.Equal(completion.Usage.InputTokenCount, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"prompt\""));
        Assert.Equal(completion.Usage.OutputTokenCount, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"200\""));
    }

    [Fact]
    public async Task CompleteChatStreaming_StreamsTokensAndTheGatewayAccountsThem()
    {
        await using var gateway = await TestGateway.StartAsync();
        var client = Client(gateway, TestGateway.Key);

        var text = new System.Text.StringBuilder();
        var updates = 0;
        ChatTokenUsage? usage = null;
        await foreach (var update in client.CompleteChatStreamingAsync(
            [new UserChatMessage("Count to ten.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 20 }))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
        }

        Assert.True(updates > 2);
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
        Assert.NotNull(usage); // the client asked for usage itself, so it must still get it
        var metrics = await gateway.MetricsAfterAsync(1);
        Assert.Equal(usage.OutputTokenCount, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
    }

    [Fact]
    public async Task CompleteChat_WrongKey_Is401AndDisallowedModelIs403()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);

        var unauthorized = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client(gateway, "sk-wrong").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, unauthorized.Status);

        var forbidden = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client(gateway, TestGateway.LimitedKey).CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(403, forbidden.Status);
    }

    [Fact]
    public async Task CompleteChat_JwtAsTheApiKey_IsServedAndAnExpiredJwtIs401()
    {
        const string secretEnv = "AOTPROXY_FUNCTIONAL_JWT_SECRET";
        Environment.SetEnvironmentVariable(secretEnv, TestJwt.Secret);
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: $"\n[jwt]\nhs256_secret_env = \"{secretEnv}\"\n");
        var now = DateTimeOffset.UtcNow;

        ChatCompletion completion = await Client(gateway, TestJwt.Hs256(TestJwt.Claims("acme", now))).CompleteChatAsync(
            [new UserChatMessage("Hello from a JWT.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 8 });

        Assert.False(string.IsNullOrWhiteSpace(completion.Content[0].Text));
        var metrics = await gateway.MetricsAfterAsync(1);
        Assert.Equal(completion.Usage.OutputTokenCount, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));

        var expired = TestJwt.Hs256(TestJwt.Claims("acme", now.AddHours(-2)));
        var unauthorized = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client(gateway, expired).CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, unauthorized.Status);

        // What the client was told: the reason, in OpenAI's shape, and RFC 6750's header.
        using var raw = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key: expired));
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, raw.StatusCode);
        var body = await raw.Content.ReadAsStringAsync();
        Assert.Contains("\"code\":\"invalid_token\"", body, StringComparison.Ordinal);
        Assert.Contains("expired", body, StringComparison.Ordinal);
        Assert.Equal("Bearer", Assert.Single(raw.Headers.WwwAuthenticate).Scheme);
    }

    [Fact]
    public async Task CompleteChat_OverTheTenantsRpm_SurfacesThe429WithRetryAfter()
    {
        const string key = "sk-test-one-per-minute";
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: $"""

            [[tenants]]
            name = "slow"
            api_key_sha256 = ["{AotProxy.Identity.ApiKeyIndex.HashKey(key)}"]
            rpm = 1
            """);
        // No retries: the client would otherwise wait out the Retry-After (~61 s) and try again.
        var client = Client(gateway, key, retry: false);
        await client.CompleteChatAsync([new UserChatMessage("hi")]);

        // A prompt of ~13 tokens (52 characters) against a budget of 5: nothing left for it.
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("What is the capital of France? Answer in one word...")]));

        Assert.Equal(429, refused.Status);
        Assert.Contains("rate_limit_exceeded", refused.Message, StringComparison.Ordinal);
        Assert.True(refused.GetRawResponse()!.Headers.TryGetValue("retry-after", out var retryAfter));
        // Until the first request's second leaves the sliding minute: 61 s after it, rounded up.
        Assert.InRange(int.Parse(retryAfter!, System.Globalization.CultureInfo.InvariantCulture), 50, 61);
    }

    [Fact]
    public async Task CompleteChat_BudgetUsedUp_SurfacesThe429InsufficientQuota()
    {
        const string key = "sk-test-no-budget-left";
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: $"""

            [[tenants]]
            name = "broke"
            api_key_sha256 = ["{AotProxy.Identity.ApiKeyIndex.HashKey(key)}"]
            budget_tokens = 5
            """);
        var client = Client(gateway, key, retry: false);

        // A prompt of ~13 tokens (52 characters) against a budget of 5: nothing left for it.
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("What is the capital of France? Answer in one word...")]));

        Assert.Equal(429, refused.Status);
        Assert.Contains("insufficient_quota", refused.Message, StringComparison.Ordinal);
        Assert.Contains("token budget of tenant broke", refused.Message, StringComparison.Ordinal);
        Assert.True(refused.GetRawResponse()!.Headers.TryGetValue("retry-after", out var retryAfter));
        Assert.Equal("86400", retryAfter); // lifetime: until an operator raises it
        Assert.Equal(0, gateway.Workers[0].Stats.RequestsTotal);
    }

    private static ChatClient Client(TestGateway gateway, string key, bool retry = true) => new(
        TestGateway.Model,
        new ApiKeyCredential(key),
        new OpenAIClientOptions
        {
            Endpoint = new Uri(gateway.Host.DataUri, "v1"),
            NetworkTimeout = TimeSpan.FromSeconds(60),
            RetryPolicy = retry ? null : new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
        });
}
