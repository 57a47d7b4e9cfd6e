using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;

namespace AotProxy.FunctionalTests;

// scheduler.engine_priority end to end: the worker's own scheduler gets the priority the request
// was admitted with. A simulated worker under --scheduling-policy fcfs says which priority it got:
// it refuses any but 0 with vLLM's "Got priority N ..." 400, which the gateway passes through.
public class EnginePriorityTests
{
    private const string P2Class = """

        [[classes]]
        name = "default"
        priority = 2
        """;

    // The client asks for priority 0 itself, which an fcfs worker would take: the 400 shows the
    // gateway's value came last and won.
    private static readonly string ClientSaysZero = TestGateway.Chat(stream: false, maxTokens: 4).TrimEnd('}') + ",\"priority\":0}";

    [Fact]
    public async Task EnginePriority_OnThenReloadedOff_TheWorkerGetsTheClassPriorityOnlyWhileOn()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, watch: true, extraToml: "\n[scheduler]\nengine_priority = true\n" + P2Class);

        // A stream too: the usage splice and the priority splice together still make valid JSON.
        foreach (var json in new[] { ClientSaysZero, TestGateway.Chat(stream: true, maxTokens: 4) })
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", json));
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
            Assert.Equal("Got priority 2 but Priority scheduling is not enabled.", error.GetProperty("message").GetString());
            Assert.Equal("BadRequestError", error.GetProperty("type").GetString());
        }

        var before = gateway.Store.Current.Revision;
        await File.WriteAllTextAsync(gateway.ConfigPath, TestGateway.Toml(gateway.Workers, "\n[scheduler]\nengine_priority = false\n" + P2Class));
        await TestGateway.WaitUntilAsync(() => Task.FromResult(gateway.Store.Current.Revision > before), "the reload was applied");

        using (var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", ClientSaysZero)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.False(gateway.Store.Current.Scheduler.EnginePriority);
    }

    [Fact]
    public async Task EnginePriority_PriorityWorkerAndAStream_UsageAndPriorityBothSpliced()
    {
        await using var gateway = await TestGateway.StartAsync(
            workers: 1, configure: o => o.SchedulingPolicy = SchedulingPolicy.Priority, extraToml: "\n[scheduler]\nengine_priority = true\n" + P2Class);

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 5)));
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"usage\"", body, StringComparison.Ordinal); // the client did not ask for it
        await TestGateway.WaitUntilAsync(
            async () => Fleet.Named(await Fleet.GetJsonAsync(gateway, "/api/tenants"), "acme").GetProperty("completion_tokens").GetInt64() > 0,
            "the stream's usage was accounted");
    }
}
