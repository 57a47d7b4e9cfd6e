using System.Globalization;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// POST /v1/responses (issue 21) through the real binary in front of `aotproxy simulate` workers,
// called by the official openai npm client's responses.create, streamed and not: the ledger
// counts exactly the usage the worker reported (the body's, or response.completed's). A stream
// the gateway has to cut ends with the Responses API's own `error` event.
public class ResponsesApiBinaryTests
{
    [Fact]
    public async Task ResponsesCreate_StreamedAndNot_TheLedgerHasTheWorkersUsage()
    {
        await using var gateway = await SimulateGateway.StartAsync();

        var plain = await Responses(gateway.Process, "create", 12);
        var streamed = await Responses(gateway.Process, "stream", 9);

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

    [Fact]
    public async Task AStreamWhoseWorkerGoesSilent_EndsWithTheResponsesErrorEvent_AndIsAccountedOnce()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, forwardingToml: "stream_idle_timeout = \"1s\"", configure: o => o.Faults.InterTokenDelay = TimeSpan.FromSeconds(30));

        var result = await Responses(gateway.Process, "stream", 4);

        Assert.False(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.Equal("stream_idle_timeout", result.GetProperty("code").GetString());
        Assert.Contains("The worker sent nothing for 1s (stream_idle_timeout)", result.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.NotEqual("", result.GetProperty("text").GetString()); // the first delta did arrive
        await TestGateway.WaitUntilAsync(
            async () => MetricsText.Value(await gateway.Admin.GetStringAsync("/metrics"), "llm_gateway_estimated_usage_total", "tenant=\"acme\"") == 1,
            "the cut stream is accounted (estimated: no response.completed came)");
    }

    private static Task<JsonElement> Responses(GatewayProcess gateway, string mode, int maxOutputTokens) => NodeClient.RunAsync(
        "responses.mjs", "openai", new Uri(gateway.DataUri!, "v1").ToString(), TestGateway.Key, TestGateway.Model, maxOutputTokens.ToString(CultureInfo.InvariantCulture), mode);
}
