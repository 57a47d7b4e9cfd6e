using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// Issue 21's [[models]] aliases through the real binary: two simulated workers serve "served-a"
// and "served-b" (each answers 404 for any other name, as vLLM does, so a request that reaches
// one named the served model); the alias "public-chat" stands for both, caps max_tokens at 3 and
// is open to acme only.
public class ModelAliasBinaryTests
{
    private const string OtherKey = "sk-test-other";
    private const string Alias = "public-chat";

    [Fact]
    public async Task Alias_ServesChatAndStreamAsTheServedModel_CapsMaxTokens_RefusesOtherTenants()
    {
        await using var gateway = await BinaryGateway.StartTwoModelsAsync("served-a", "served-b", $"""

            [[tenants]]
            name = "other"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(OtherKey)}"]

            [[models]]
            name = "{Alias}"
            targets = ["served-a", "served-b"]
            max_tokens = 3
            tenants = ["acme"]
            """);

        // /v1/models: acme sees the alias beside the served models; other does not.
        Assert.Equal(["public-chat", "served-a", "served-b"], (await gateway.ModelIdsAsync(TestGateway.Key)).Order(StringComparer.Ordinal));
        Assert.Equal(["served-a", "served-b"], (await gateway.ModelIdsAsync(OtherKey)).Order(StringComparer.Ordinal));

        // Non-stream: the worker got a name it serves (else 404), and max_tokens 50 capped at 3.
        using (var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", Chat(stream: false))))
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            using var json = JsonDocument.Parse(text);
            var model = json.RootElement.GetProperty("model").GetString();
            Assert.StartsWith("served-", model, StringComparison.Ordinal);
            Assert.Equal(model, Assert.Single(response.Headers.GetValues("x-gateway-model")));
            Assert.Equal(3, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }

        // Stream: every chunk names the served model; 3 tokens of content (after the role chunk's empty
        // one), the usage chunk the gateway asked for stripped.
        using (var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", Chat(stream: true))))
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            var served = Assert.Single(response.Headers.GetValues("x-gateway-model"));
            var chunks = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Where(e => e != "data: [DONE]").Select(e => JsonDocument.Parse(e["data: ".Length..])).ToList();
            Assert.All(chunks, c => Assert.Equal(served, c.RootElement.GetProperty("model").GetString()));
            Assert.Equal(3, chunks.Count(c => c.RootElement.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 }));
            Assert.DoesNotContain("\"usage\":{", text, StringComparison.Ordinal);
            Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
        }

        // Both targets served (round robin over spare slots: the idle one each time); the ledger's
        // model is the served one: the metric counts served-a and served-b, never the alias.
        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        Assert.Contains("llm_gateway_requests_total{model=\"served-", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain($"model=\"{Alias}\"", metrics, StringComparison.Ordinal);

        // A tenant the alias does not list: 403 model_not_allowed, nothing reaches a worker.
        var before = gateway.Workers.Sum(w => w.Stats.RequestsTotal);
        using (var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", Chat(stream: false), OtherKey)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("model_not_allowed", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        }

        Assert.Equal(before, gateway.Workers.Sum(w => w.Stats.RequestsTotal));
    }

    private static string Chat(bool stream) =>
        $$"""{"model":"{{Alias}}","messages":[{"role":"user","content":"Hello"}],"max_tokens":50,"ignore_eos":true,"stream":{{(stream ? "true" : "false")}}}""";
}
