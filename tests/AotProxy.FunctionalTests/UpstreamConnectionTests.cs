using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Testing;

namespace AotProxy.FunctionalTests;

// The gateway's own HTTP/1.1 client against a worker at the TCP level: keep-alive reuse, a
// worker that closed an idle connection, interim responses, chunked bodies, and garbage.
public class UpstreamConnectionTests
{
    private static readonly string VllmBody = Fixtures.Text("openai/chat_nonstream.json");

    [Fact]
    public async Task SequentialRequests_ShareOneKeepAliveConnection()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(VllmBody)));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        for (var i = 0; i < 5; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(VllmBody, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(5, worker.Requests);
        Assert.Equal(1, worker.Connections);
        Assert.Equal(60, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"prompt\""));
    }

    [Fact]
    public async Task WorkerThatClosedAnIdleConnection_GetsTheRequestAgainOnANewOne()
    {
        // The worker closes after every answer without saying so: the gateway's pooled
        // connection is dead when the next request takes it.
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(VllmBody), closeAfter: true));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        for (var i = 0; i < 3; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await Task.Delay(50); // let the close arrive before the next request
        }

        Assert.Equal(3, worker.Requests);
        Assert.Equal(3, worker.Connections);
    }

    [Fact]
    public async Task ConnectionClose_IsNotReused()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(VllmBody, "Connection: close\r\n")));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        for (var i = 0; i < 2; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(2, worker.Connections);
    }

    [Fact]
    public async Task InterimResponse_IsSkipped_AndChunkedJsonIsReadForUsage()
    {
        var chunked = new StringBuilder("HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        foreach (var piece in VllmBody.Chunk(100))
        {
            chunked.Append($"{Encoding.UTF8.GetByteCount(piece):x}\r\n").Append(piece).Append("\r\n");
        }

        chunked.Append("0\r\n\r\n");
        await using var worker = new RawWorker(_ => RawReply.Of(Encoding.UTF8.GetBytes(chunked.ToString())));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        for (var i = 0; i < 2; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(VllmBody, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, worker.Connections);
        Assert.Equal(200, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
    }

    [Fact]
    public async Task GarbageInsteadOfAHead_Is502_AndNothingIsInFlight()
    {
        await using var worker = new RawWorker(_ => RawReply.Of("SSH-2.0-OpenSSH_9.2\r\n\r\n"u8.ToArray()));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("upstream_error", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.All(gateway.Host.Workers.Current.Workers, w => Assert.Equal(0, w.InFlight));
    }

    [Fact]
    public async Task BrokenChunking_CutsTheClientResponse_AndTheNextRequestWorks()
    {
        var broken = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"id\"\r\nzz\r\n"u8.ToArray();
        await using var worker = new RawWorker(n => RawReply.Of(n == 1 ? broken : RawWorker.Json(VllmBody)));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
            await response.Content.ReadAsStringAsync();
        });

        using var next = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(VllmBody, await next.Content.ReadAsStringAsync());
        Assert.Equal(2, worker.Connections); // the broken connection was not pooled
    }

    [Fact]
    public async Task ResponseInTinyPieces_StreamsThroughWhole()
    {
        var bytes = RawWorker.Json(VllmBody);
        var parts = bytes.Chunk(7).ToArray();
        await using var worker = new RawWorker(_ => new RawReply(parts, PauseBetweenParts: TimeSpan.FromMilliseconds(1)));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(VllmBody, await response.Content.ReadAsStringAsync());
    }
}
