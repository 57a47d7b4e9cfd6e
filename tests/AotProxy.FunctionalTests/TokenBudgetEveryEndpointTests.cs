using System.Net;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 21: "A tenant limited to 1,000 tokens cannot exceed it through any endpoint. A test tries
// each one." Through the real binary, one row per endpoint (another endpoint is one more line):
// a tenant of its own with budget_tokens = 1000 spends through the endpoint until it is refused
// (an endpoint that uses no tokens, the tokenizer, has chat spend it), then the endpoint refuses
// the next request with 429 insufficient_quota, and the ledger holds exactly what the tenant's
// counters say it spent.
//
// The bound: requests go one at a time, and one is admitted only while its reservation (the prompt
// estimate, plus max_tokens capped to what is left: budget_overrun = "cap") fits in what is left.
// The worker honours the cap, so only the last admitted request can go past 1,000, and only by
// what its reported prompt exceeds the gateway's estimate of it: the total is at most 1,000 + that
// request's prompt tokens. The tenant also really spends its budget: the total is more than 1,000
// less the largest single request.
public class TokenBudgetEveryEndpointTests
{
    private const long Budget = 1000;

    // ~190 tokens of text: a few requests per tenant use the budget up.
    private static readonly string Text = string.Join(' ', Enumerable.Repeat("budget", 108));

    public static readonly (string Name, string Path, string Body, bool UsesTokens)[] Endpoints =
    [
        ("chat", "v1/chat/completions", $$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"user","content":"{{Text}}"}],"max_tokens":150}""", true),
        ("chat-stream", "v1/chat/completions", $$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"user","content":"{{Text}}"}],"max_tokens":150,"stream":true}""", true),
        ("completions", "v1/completions", $$"""{"model":"{{TestGateway.Model}}","prompt":"{{Text}}","max_tokens":150}""", true),
        ("embeddings", "v1/embeddings", $$"""{"model":"{{TestGateway.Model}}","input":"{{Text}}"}""", true),
        ("rerank", "v1/rerank", $$"""{"model":"{{TestGateway.Model}}","query":"{{Text}}","documents":["one document","another one"]}""", true),
        ("score", "score", $$"""{"model":"{{TestGateway.Model}}","text_1":"{{Text}}","text_2":["one document","another one"]}""", true),
        ("pooling", "pooling", $$"""{"model":"{{TestGateway.Model}}","input":"{{Text}}"}""", true),
        ("classify", "classify", $$"""{"model":"{{TestGateway.Model}}","input":["{{Text}}"]}""", true),
        ("tokenize", "tokenize", $$"""{"model":"{{TestGateway.Model}}","prompt":"{{Text}}"}""", false),
        ("detokenize", "detokenize", $$"""{"model":"{{TestGateway.Model}}","tokens":[1,2,3]}""", false),
        ("responses", "v1/responses", $$"""{"model":"{{TestGateway.Model}}","input":"{{Text}}","max_output_tokens":150}""", true),
        ("responses-stream", "v1/responses", $$"""{"model":"{{TestGateway.Model}}","input":"{{Text}}","max_output_tokens":150,"stream":true}""", true),
        ("messages", "v1/messages", $$"""{"model":"{{TestGateway.Model}}","max_tokens":150,"messages":[{"role":"user","content":"{{Text}}"}]}""", true),
        ("messages-stream", "v1/messages", $$"""{"model":"{{TestGateway.Model}}","max_tokens":150,"messages":[{"role":"user","content":"{{Text}}"}],"stream":true}""", true),
        // Audio: a multipart upload of a 2-second WAV (Send); the body is the form's other fields.
        // A translation's JSON answer has no usage (estimated by design), so it streams here.
        ("transcriptions", "v1/audio/transcriptions", "", true),
        ("transcriptions-stream", "v1/audio/transcriptions", "stream=true", true),
        ("translations-stream", "v1/audio/translations", "stream=true", true),
    ];

    // A JSON body, or for the audio endpoints the form the openai client sends (AudioUpload) with
    // the row's fields.
    private static HttpRequestMessage Send(string path, string body, string key, string requestId) =>
        path.StartsWith("v1/audio/", StringComparison.Ordinal)
            ? AudioUpload.Post(path, TestGateway.Model, body, key, requestId)
            : TestGateway.Post(path, body, key, requestId);

    [Fact]
    public async Task ATenantLimitedTo1000Tokens_CannotExceedItThroughAnyEndpoint()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, configure: o => o.SpeedFactor = 20, extraToml: """

            [ledger]
            batch_interval = "50ms"
            """);
        var ledger = Path.Combine(Path.GetDirectoryName(gateway.ConfigPath)!, "aotproxy-usage.db");
        var failures = new List<string>();
        foreach (var (name, path, body, usesTokens) in Endpoints)
        {
            var tenant = "budget-" + name;
            var created = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", $$"""{"name":"{{tenant}}","budget_tokens":{{Budget}}}""");
            Assert.True(created.Status == HttpStatusCode.Created, created.Text);
            var (_, key) = await AdminApi.IssueAsync(gateway.Admin, tenant);

            // Spend until refused: at most 100 requests (each uses tens of tokens at least).
            var sent = 0;
            var (spendPath, spendBody) = usesTokens ? (path, body) : (Endpoints[0].Path, Endpoints[0].Body);
            HttpStatusCode status;
            do
            {
                using var response = await gateway.Data.SendAsync(Send(spendPath, spendBody, key, $"{tenant}-{sent++}"));
                await response.Content.ReadAsStringAsync();
                status = response.StatusCode;
                Assert.True(status is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"{name}: {status}");
            }
            while (status == HttpStatusCode.OK && sent < 100);

            // The next request through this endpoint: refused before it reaches a worker.
            using (var next = await gateway.Data.SendAsync(Send(path, body, key, $"{tenant}-{sent++}")))
            {
                var text = await next.Content.ReadAsStringAsync();
                // OpenAI's insufficient_quota; Anthropic's API (/v1/messages) says rate_limit_error.
                var refusal = path == "v1/messages" ? "\"rate_limit_error\"" : "insufficient_quota";
                if (next.StatusCode != HttpStatusCode.TooManyRequests || !text.Contains(refusal, StringComparison.Ordinal))
                {
                    failures.Add($"{name}: the request after the budget got {(int)next.StatusCode} {text}");
                }
            }

            await TestGateway.WaitUntilAsync(() => Task.FromResult(LedgerFile.ReadRows(ledger).Values.Count(r => r.Tenant == tenant) == sent), $"{name}: {sent} ledger rows");
            var rows = LedgerFile.ReadRows(ledger).Values.Where(r => r.Tenant == tenant).ToList();
            var served = rows.Where(r => r.Status == 200).ToList();
            var total = served.Sum(r => r.Prompt + r.Completion);
            var lastPrompt = served.Count == 0 ? 0 : served.Max(r => r.Prompt);
            var largest = served.Count == 0 ? 0 : served.Max(r => r.Prompt + r.Completion);
            if (total > Budget + lastPrompt || total <= Budget - largest || served.Any(r => r.Estimated))
            {
                failures.Add($"{name}: {served.Count} requests served {total} tokens (largest {largest}, estimated: {served.Count(r => r.Estimated)})");
            }

            // Exact accounting: the ledger and the tenant's spend agree.
            var (_, tenants, _) = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Get, "/api/tenants");
            var spent = tenants.EnumerateArray().Single(t => t.GetProperty("name").GetString() == tenant).GetProperty("spent_tokens").GetInt64();
            if (spent != total)
            {
                failures.Add($"{name}: the tenant spent {spent}, the ledger says {total}");
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }
}
