using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 21's aliases and model "auto" beyond chat, through the real binary: the official openai
// npm client's responses.create and @anthropic-ai/sdk's messages (create and stream), and raw
// embeddings and rerank. Two simulated workers serve "served-a" (chat and embeddings) and
// "served-b" (chat); each answers 404 for any other name, so a request that reaches one named the
// served model. The answer's `model` and x-gateway-model name the served model; the ledger keeps
// it in `model` and the name the client sent in `requested_model`.
public class ModelAliasEveryEndpointBinaryTests
{
    private const string Alias = "public-chat";

    private static readonly string[] Served = ["served-a", "served-b"];

    [Fact]
    public async Task AliasAndAuto_OnResponsesMessagesEmbeddingsAndRerank_AnswerAsTheServedModel_AndTheLedgerKeepsBothNames()
    {
        await using var gateway = await BinaryGateway.StartTwoModelsAsync("served-a", "served-b", $"""

            [ledger]
            batch_interval = "50ms"

            [[models]]
            name = "{Alias}"
            targets = ["served-a", "served-b"]

            [[models]]
            name = "served-a"
            capabilities = ["chat", "embeddings"]
            """);
        var data = gateway.Process.DataUri!;

        // The official clients: each call's model (every event's, in a stream) and header are one served model.
        var calls = new (string Asked, JsonElement Result)[]
        {
            (Alias, await NodeApis.ResponsesAsync(data, "create", 8, Alias)),
            ("auto", await NodeApis.ResponsesAsync(data, "stream", 8, "auto")),
            (Alias, await NodeApis.MessagesAsync(data, "stream", 8, Alias)),
            ("auto", await NodeApis.MessagesAsync(data, "create", 8, "auto")),
        };
        foreach (var (asked, result) in calls)
        {
            Assert.True(result.GetProperty("ok").GetBoolean(), $"{asked}: {result}");
            Assert.NotEqual("", result.GetProperty("text").GetString());
            Assert.Contains(result.GetProperty("model").GetString(), Served);
            Assert.Equal(result.GetProperty("model").GetString(), result.GetProperty("header").GetString());
        }

        // Pooling endpoints: the alias to either target; auto to the one model that declares embeddings.
        Assert.Contains(await ServedAsync(gateway, "v1/embeddings", $$"""{"model":"{{Alias}}","input":"vLLM is fast"}"""), Served);
        Assert.Contains(await ServedAsync(gateway, "v1/rerank", $$"""{"model":"{{Alias}}","query":"what is vLLM","documents":["an engine","a fish"]}"""), Served);
        Assert.Equal("served-a", await ServedAsync(gateway, "v1/embeddings", """{"model":"auto","input":"vLLM is fast"}"""));

        // Seven rows, each with the served model and the name asked; none served "auto" or the alias.
        var ledger = Path.Combine(Path.GetDirectoryName(gateway.ConfigPath)!, "aotproxy-usage.db");
        await TestGateway.WaitUntilAsync(() => Task.FromResult(LedgerFile.ReadRows(ledger).Count == 7), "every request has its ledger row");
        var rows = LedgerFile.ReadRows(ledger).Values.ToList();
        Assert.All(rows, r => Assert.Equal((200, "acme"), (r.Status, r.Tenant)));
        Assert.All(rows, r => Assert.Contains(r.Model, Served));
        Assert.Equal(4, rows.Count(r => r.RequestedModel == Alias));
        Assert.Equal(3, rows.Count(r => r.RequestedModel == "auto"));

        // GET /api/usage?by=requested_model sums them by the name asked; by=model by the served one.
        Assert.Equal(["auto", Alias], await UsageKeysAsync(gateway, "requested_model"));
        Assert.All(await UsageKeysAsync(gateway, "model"), k => Assert.Contains(k, Served));
    }

    // The served model of a raw call: the answer's `model`, which x-gateway-model must equal.
    private static async Task<string> ServedAsync(BinaryGateway gateway, string path, string body)
    {
        using var response = await gateway.Data.SendAsync(TestGateway.Post(path, body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
        using var json = JsonDocument.Parse(text);
        var model = json.RootElement.GetProperty("model").GetString()!;
        Assert.Equal(model, Assert.Single(response.Headers.GetValues("x-gateway-model")));
        return model;
    }

    private static async Task<List<string>> UsageKeysAsync(BinaryGateway gateway, string by)
    {
        using var json = JsonDocument.Parse(await gateway.Admin.GetStringAsync($"/api/usage?by={by}&since=2000-01-01"));
        return [.. json.RootElement.GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("key").GetString()!)];
    }
}
