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

        await NodeApis.CreateAndStreamAreAccountedAsync(gateway, (mode, max) => NodeApis.ResponsesAsync(gateway.Process.DataUri!, mode, max));
    }

    [Fact]
    public async Task AStreamWhoseWorkerGoesSilent_EndsWithTheResponsesErrorEvent_AndIsAccountedOnce()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, forwardingToml: "stream_idle_timeout = \"1s\"", configure: o => o.Faults.InterTokenDelay = TimeSpan.FromSeconds(30));

        var result = await NodeApis.ResponsesAsync(gateway.Process.DataUri!, "stream", 4);

        Assert.False(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.Equal("stream_idle_timeout", result.GetProperty("code").GetString());
        Assert.Contains("The worker sent nothing for 1s (stream_idle_timeout)", result.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.NotEqual("", result.GetProperty("text").GetString()); // the first delta did arrive
        await TestGateway.WaitUntilAsync(
            async () => MetricsText.Value(await gateway.Admin.GetStringAsync("/metrics"), "llm_gateway_estimated_usage_total", "tenant=\"acme\"") == 1,
            "the cut stream is accounted (estimated: no response.completed came)");
    }
}
