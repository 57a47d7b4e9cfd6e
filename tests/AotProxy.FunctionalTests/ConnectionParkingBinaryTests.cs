using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// server.park_idle_after through the real binary: a keep-alive client connection idle past it is
// parked (the metrics say so), and the same socket's next chat completion is served in full.
public class ConnectionParkingBinaryTests
{
    private static readonly string Chat = $$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"user","content":"Say hello"}],"max_tokens":8}""";

    [Fact]
    public async Task IdleKeepAliveConnection_IsParked_AndItsNextRequestIsServed()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, serverToml: "park_idle_after = \"100ms\"");
        using var client = await KeepAliveClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, gateway.Process.DataUri!.Port));
        var auth = $"Authorization: Bearer {TestGateway.Key}\r\n";

        await client.SendAsync(KeepAliveClient.Post("/v1/chat/completions", Chat, auth));
        AssertCompletion(await client.ReadResponseAsync());
        await TestGateway.WaitUntilAsync(async () => Parked(await gateway.Admin.GetStringAsync("/metrics")) == 1, "the idle connection is parked");

        await client.SendAsync(KeepAliveClient.Post("/v1/chat/completions", Chat, auth));
        AssertCompletion(await client.ReadResponseAsync());
        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        Assert.Equal(0, Parked(metrics));
        Assert.True(MetricsText.Value(metrics, "llm_gateway_connection_parks_total") >= 1, metrics);
        Assert.Equal(2, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"200\""));

        // A stream on the same socket after a second park: every event, then [DONE].
        await TestGateway.WaitUntilAsync(async () => Parked(await gateway.Admin.GetStringAsync("/metrics")) == 1, "the connection parks again");
        await client.SendAsync(KeepAliveClient.Post("/v1/chat/completions", Chat.Replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"", StringComparison.Ordinal), auth));
        var (status, _, body) = await client.ReadResponseAsync();
        Assert.Equal(200, status);
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
    }

    private static double Parked(string metrics) => MetricsText.Value(metrics, "llm_gateway_parked_connections");

    private static void AssertCompletion((int Status, string Head, string Body) response)
    {
        Assert.True(response.Status == 200, $"{response.Status}: {response.Body}");
        using var json = JsonDocument.Parse(response.Body);
        Assert.Equal("chat.completion", json.RootElement.GetProperty("object").GetString());
        Assert.NotEmpty(json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);
    }
}
