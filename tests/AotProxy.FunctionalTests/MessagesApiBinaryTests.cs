using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// POST /v1/messages (issue 21) through the real binary in front of `aotproxy simulate` workers,
// called by the official @anthropic-ai/sdk (messages.create and messages.stream, its key sent as
// x-api-key): the ledger counts exactly the usage the worker reported, and the gateway's own
// refusals reach the SDK as its typed errors, from Anthropic's body and status.
public class MessagesApiBinaryTests
{
    [Fact]
    public async Task MessagesCreateAndStream_TheLedgerHasTheWorkersUsage()
    {
        await using var gateway = await SimulateGateway.StartAsync();

        await NodeApis.CreateAndStreamAreAccountedAsync(gateway, (mode, max) => Messages(gateway.Process, mode, max));
    }

    [Fact]
    public async Task GatewayRefusals_ReachTheSdkAsAnthropicErrors()
    {
        const string limitedKey = "sk-test-one-per-minute";
        await using var gateway = await SimulateGateway.StartAsync(extraToml: $"""

            [[tenants]]
            name = "slow"
            api_key_sha256 = ["{AotProxy.Identity.ApiKeyIndex.HashKey(limitedKey)}"]
            rpm = 1
            """);

        // A wrong key: 401 authentication_error, AuthenticationError.
        var wrongKey = await Messages(gateway.Process, "create", 8, "sk-wrong");
        Assert.Equal(("AuthenticationError", 401, "authentication_error"), Failure(wrongKey));

        // Over the tenant's rpm: 429 rate_limit_error with Retry-After, RateLimitError.
        Assert.True((await Messages(gateway.Process, "create", 8, limitedKey)).GetProperty("ok").GetBoolean());
        var limited = await Messages(gateway.Process, "stream", 8, limitedKey);
        Assert.Equal(("RateLimitError", 429, "rate_limit_error"), Failure(limited));
        Assert.InRange(int.Parse(limited.GetProperty("retryAfter").GetString()!, CultureInfo.InvariantCulture), 1, 61);

        // No worker can take it (the only one drained): Anthropic's 529 overloaded_error.
        using (var drained = await gateway.Admin.PostAsync("/api/workers/sim-0/drain", null))
        {
            Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
        }

        var overloaded = await Messages(gateway.Process, "create", 8);
        Assert.Equal((529, "overloaded_error"), (Failure(overloaded).Status, Failure(overloaded).Type));

        // Without max_tokens, which Anthropic requires: 400 invalid_request_error, before any worker.
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/messages")
        {
            Content = new StringContent($$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-api-key", TestGateway.Key);
        using var missing = await gateway.Data.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        using var body = JsonDocument.Parse(await missing.Content.ReadAsStringAsync());
        Assert.Equal("error", body.RootElement.GetProperty("type").GetString());
        Assert.Equal("invalid_request_error", body.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("max_tokens", body.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    // stream_budget_cutoff on a Messages stream: cut at the budget with Anthropic's `event: error`,
    // which the SDK's messages.stream raises; charged what was relayed.
    [Fact]
    public async Task AStreamOverItsTenantsBudget_EndsWithAnthropicsErrorEvent()
    {
        await using var gateway = await SimulateGateway.StartAsync();
        var created = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", """{"name":"capped","budget_tokens":60,"stream_budget_cutoff":true}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var (_, key) = await AdminApi.IssueAsync(gateway.Admin, "capped");

        var result = await Messages(gateway.Process, "stream", 400, key);

        Assert.Equal(("APIError", "rate_limit_error"), (result.GetProperty("error").GetString(), result.GetProperty("type").GetString()));
        Assert.Contains("stream_budget_cutoff", result.GetProperty("message").GetString(), StringComparison.Ordinal);
        var relayed = result.GetProperty("text").GetString()!;
        Assert.NotEqual("", relayed);
        // Charged as estimated (message_delta never came): the prompt estimate and the deltas
        // relayed, which the cut keeps to the budget exactly; not message_start's partial usage.
        var row = await gateway.LedgerRowAsync("capped", requests: 1);
        Assert.Equal(1, row.GetProperty("estimated_requests").GetInt64());
        Assert.InRange(row.GetProperty("completion_tokens").GetInt64(), 1, 59);
        Assert.Equal(60, row.GetProperty("prompt_tokens").GetInt64() + row.GetProperty("completion_tokens").GetInt64());
    }

    private static (string Error, int Status, string Type) Failure(JsonElement result)
    {
        Assert.False(result.GetProperty("ok").GetBoolean(), result.ToString());
        return (result.GetProperty("error").GetString()!, result.GetProperty("status").GetInt32(), result.GetProperty("type").GetString()!);
    }

    private static Task<JsonElement> Messages(GatewayProcess gateway, string mode, int maxTokens, string key = TestGateway.Key) =>
        NodeApis.MessagesAsync(gateway.DataUri!, mode, maxTokens, key: key);
}
