using System.Globalization;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// The official npm clients' calls the API tests make (Node/responses.mjs with openai,
// Node/messages.mjs with @anthropic-ai/sdk), and the check they share: a create and a stream
// both answer, and the tenant's ledger holds exactly the usage the client read.
internal static class NodeApis
{
    // mode: "create" or "stream"; the data plane's root (the openai client gets …/v1).
    public static Task<JsonElement> ResponsesAsync(Uri data, string mode, int maxOutputTokens, string model = TestGateway.Model, string key = TestGateway.Key) => NodeClient.RunAsync(
        "responses.mjs", "openai", new Uri(data, "v1").ToString(), key, model, maxOutputTokens.ToString(CultureInfo.InvariantCulture), mode);

    public static Task<JsonElement> MessagesAsync(Uri data, string mode, int maxTokens, string model = TestGateway.Model, string key = TestGateway.Key) => NodeClient.RunAsync(
        "messages.mjs", "@anthropic-ai/sdk", data.ToString().TrimEnd('/'), key, model, maxTokens.ToString(CultureInfo.InvariantCulture), mode);

    // call(mode, max tokens): a create of at most 12 tokens and a stream of at most 9, as acme.
    public static async Task CreateAndStreamAreAccountedAsync(SimulateGateway gateway, Func<string, int, Task<JsonElement>> call)
    {
        var plain = await call("create", 12);
        var streamed = await call("stream", 9);

        Assert.True(plain.GetProperty("ok").GetBoolean(), plain.ToString());
        Assert.True(streamed.GetProperty("ok").GetBoolean(), streamed.ToString());
        Assert.NotEqual("", plain.GetProperty("text").GetString());
        Assert.NotEqual("", streamed.GetProperty("text").GetString());
        var usages = new[] { plain.GetProperty("usage"), streamed.GetProperty("usage") };
        Assert.All(usages, u => Assert.True(u.GetProperty("input_tokens").GetInt64() > 0));
        Assert.InRange(plain.GetProperty("usage").GetProperty("output_tokens").GetInt64(), 1, 12);
        Assert.InRange(streamed.GetProperty("usage").GetProperty("output_tokens").GetInt64(), 1, 9);

        var row = await gateway.LedgerRowAsync("acme", requests: 2);
        Assert.Equal(usages.Sum(u => u.GetProperty("input_tokens").GetInt64()), row.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(usages.Sum(u => u.GetProperty("output_tokens").GetInt64()), row.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(0, row.GetProperty("estimated_requests").GetInt64()); // read, not guessed
        Assert.Equal(0, row.GetProperty("errors").GetInt64());
    }
}
