using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Ledger;

namespace AotProxy.FunctionalTests;

// Issue 21's pooling and tokenizer endpoints through the real binary, with raw HTTP (no official
// client has them): each is identified, limited, admitted, routed and proxied unchanged, and its
// ledger row holds exactly the tokens the simulator reported (0 for the tokenizer).
public class PoolingEndpointsBinaryTests
{
    private const string TokenizerKey = "sk-test-tokenizer";

    private const string Ledger = """

        [ledger]
        batch_interval = "50ms"
        """;

    // path, body, the array that holds the answer's items
    private static readonly (string Path, string Body, string Items)[] Endpoints =
    [
        ("v1/rerank", $$"""{"model":"{{TestGateway.Model}}","query":"What is the capital of France?","documents":["The capital of Brazil is Brasilia.","The capital of France is Paris.","Horses and cows are both animals"],"top_n":2}""", "results"),
        ("rerank", $$"""{"model":"{{TestGateway.Model}}","query":"What is vLLM?","documents":["A fast LLM inference engine."]}""", "results"),
        ("v2/rerank", $$"""{"model":"{{TestGateway.Model}}","query":"What is vLLM?","documents":["A fast LLM inference engine.","A kind of fish."]}""", "results"),
        ("v1/score", $$"""{"model":"{{TestGateway.Model}}","text_1":"What is the capital of France?","text_2":["The capital of France is Paris.","Paris is in Texas too."]}""", "data"),
        ("score", $$"""{"model":"{{TestGateway.Model}}","text_1":["a first query here","a second query"],"text_2":["its first document","its second document"]}""", "data"),
        ("pooling", $$"""{"model":"{{TestGateway.Model}}","input":["vLLM is great","pooling returns the hidden states"]}""", "data"),
        ("classify", $$"""{"model":"{{TestGateway.Model}}","input":["Loved the new café downtown!","The bread was stale."]}""", "data"),
    ];

    [Fact]
    public async Task PoolingEndpoints_AreProxied_AndTheLedgerHasTheSimulatorsPromptTokens()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, extraToml: Ledger);
        var expected = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (path, body, items) in Endpoints)
        {
            var id = "pool-" + path.Replace('/', '-');
            using var response = await gateway.Data.SendAsync(TestGateway.Post(path, body, requestId: id));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
            using var json = JsonDocument.Parse(text);
            Assert.True(json.RootElement.GetProperty(items).GetArrayLength() > 0, text);
            var usage = json.RootElement.GetProperty("usage");
            Assert.Equal(usage.GetProperty("total_tokens").GetInt64(), usage.GetProperty("prompt_tokens").GetInt64());
            expected[id] = usage.GetProperty("prompt_tokens").GetInt64();
        }

        var ledger = Path.Combine(Path.GetDirectoryName(gateway.ConfigPath)!, "aotproxy-usage.db");
        await TestGateway.WaitUntilAsync(() => Task.FromResult(LedgerFile.ReadRows(ledger).Count == Endpoints.Length), "every request has its ledger row");
        var rows = LedgerFile.ReadRows(ledger);
        foreach (var (id, prompt) in expected)
        {
            var row = rows[id];
            Assert.True(prompt > 0, id);
            Assert.Equal((200, LedgerOutcome.Admitted, "acme", "sim-0", TestGateway.Model), (row.Status, row.Outcome, row.Tenant, row.Worker, row.Model));
            Assert.Equal((prompt, 0L, false), (row.Prompt, row.Completion, row.Estimated));
        }

        Assert.Equal(Endpoints.Length, gateway.Workers[0].Stats.RequestsTotal);
    }

    [Fact]
    public async Task TokenizeAndDetokenize_AreIdentifiedAllowlistedAndRpmLimited_AndCostNoTokens()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, extraToml: $"""

            [[tenants]]
            name = "tokenizer"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(TokenizerKey)}"]
            rpm = 2
            {Ledger}
            """);
        var tokenizeBody = $$"""{"model":"{{TestGateway.Model}}","prompt":"Hello, my name is"}""";
        using (var tokenize = await gateway.Data.SendAsync(TestGateway.Post("tokenize", tokenizeBody, TokenizerKey, requestId: "tokenize")))
        {
            var text = await tokenize.Content.ReadAsStringAsync();
            Assert.True(tokenize.StatusCode == HttpStatusCode.OK, text);
            using var json = JsonDocument.Parse(text);
            Assert.Equal(json.RootElement.GetProperty("count").GetInt32(), json.RootElement.GetProperty("tokens").GetArrayLength());
            Assert.True(json.RootElement.GetProperty("count").GetInt32() > 0, text);
        }

        using (var detokenize = await gateway.Data.SendAsync(TestGateway.Post("detokenize", $$"""{"model":"{{TestGateway.Model}}","tokens":[9906,11,1917]}""", TokenizerKey, requestId: "detokenize")))
        {
            var text = await detokenize.Content.ReadAsStringAsync();
            Assert.True(detokenize.StatusCode == HttpStatusCode.OK, text);
            using var json = JsonDocument.Parse(text);
            Assert.Equal(12, json.RootElement.GetProperty("prompt").GetString()!.Length);
        }

        // rpm = 2: the third request in the minute is refused before it reaches the worker.
        using (var limited = await gateway.Data.SendAsync(TestGateway.Post("tokenize", tokenizeBody, TokenizerKey, requestId: "tokenize-429")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Contains("rate_limit_exceeded", await limited.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The allowlist and the key count as on every endpoint.
        using (var notAllowed = await gateway.Data.SendAsync(TestGateway.Post("tokenize", tokenizeBody, TestGateway.LimitedKey, requestId: "tokenize-403")))
        {
            Assert.Equal(HttpStatusCode.Forbidden, notAllowed.StatusCode);
            Assert.Contains("model_not_allowed", await notAllowed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var unknown = await gateway.Data.SendAsync(TestGateway.Post("detokenize", tokenizeBody, "sk-nobody")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        }

        var ledger = Path.Combine(Path.GetDirectoryName(gateway.ConfigPath)!, "aotproxy-usage.db");
        await TestGateway.WaitUntilAsync(() => Task.FromResult(LedgerFile.ReadRows(ledger).Count == 4), "four ledger rows");
        var rows = LedgerFile.ReadRows(ledger);
        foreach (var id in new[] { "tokenize", "detokenize" })
        {
            Assert.Equal((200, LedgerOutcome.Admitted, "tokenizer", "sim-0"), (rows[id].Status, rows[id].Outcome, rows[id].Tenant, rows[id].Worker));
            Assert.Equal((0L, 0L, false), (rows[id].Prompt, rows[id].Completion, rows[id].Estimated));
        }

        Assert.Equal((429, LedgerOutcome.RateLimited), (rows["tokenize-429"].Status, rows["tokenize-429"].Outcome));
        Assert.Equal(403, rows["tokenize-403"].Status);
        Assert.Equal(2, gateway.Workers[0].Stats.RequestsTotal);
    }
}
