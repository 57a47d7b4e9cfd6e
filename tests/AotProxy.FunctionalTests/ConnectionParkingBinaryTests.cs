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
        var metrics = await Fleet.MetricsAfterAsync(gateway.Admin, 2);
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

    // Issue 22: what the parked connections left is garbage an idle gateway would never collect;
    // a batch of parks on a quiet data plane gets one collection (Gateway/ParkedCollection), and
    // the parked connections still serve after it.
    [Fact]
    public async Task ABatchOfParkedConnections_OnAQuietGateway_IsCollected_AndTheConnectionsStillServe()
    {
        const int Connections = 260; // one batch (ParkedCollection.Batch, 256) and a few more
        await using var gateway = await BinaryGateway.StartAsync(1, serverToml: "park_idle_after = \"100ms\"");
        var endPoint = new IPEndPoint(IPAddress.Loopback, gateway.Process.DataUri!.Port);
        var auth = $"Authorization: Bearer {TestGateway.Key}\r\n";
        var clients = new List<KeepAliveClient>();
        try
        {
            for (var i = 0; i < Connections; i += 20)
            {
                var lane = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
                {
                    var client = await KeepAliveClient.ConnectAsync(endPoint);
                    await client.SendAsync(KeepAliveClient.Post("/v1/chat/completions", Chat, auth));
                    AssertCompletion(await client.ReadResponseAsync());
                    return client;
                }));
                clients.AddRange(lane);
            }

            // Polled twice a second: each /metrics answer allocates, and a gateway allocating
            // 1 MiB a second is busy, which a 25 ms poll would make it.
            var metrics = "";
            for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30); ; await Task.Delay(500))
            {
                metrics = await gateway.Admin.GetStringAsync("/metrics");
                if (MetricsText.Value(metrics, "llm_gateway_idle_collections_total") >= 1)
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, "no idle collection after the parks: " + metrics);
            }

            Assert.True(MetricsText.Value(metrics, "llm_gateway_connection_parks_total") >= 256, metrics);
            Assert.True(MetricsText.Value(metrics, "llm_gateway_idle_collection_pause_seconds_total") > 0, metrics);
            await clients[0].SendAsync(KeepAliveClient.Post("/v1/chat/completions", Chat, auth));
            AssertCompletion(await clients[0].ReadResponseAsync());
            await clients[^1].SendAsync(KeepAliveClient.Post("/v1/chat/completions", Chat, auth));
            AssertCompletion(await clients[^1].ReadResponseAsync());
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
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
