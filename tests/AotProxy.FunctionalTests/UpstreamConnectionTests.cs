using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

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
        // Accounted after the answer's last byte may have reached the client: read once all are counted.
        Assert.Equal(60, MetricsText.Value(await gateway.MetricsAfterAsync(5), "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"prompt\""));
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
        Assert.Equal(200, MetricsText.Value(await gateway.MetricsAfterAsync(2), "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
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
        Assert.All(gateway.Host.State.Current.Workers.Workers, w => Assert.Equal(0, w.InFlight));
    }

    [Fact]
    public async Task BrokenChunkingAfterTheFirstBytes_CutsTheClientResponse_AndTheNextRequestWorks()
    {
        // The first chunk reaches the client before the worker sends the broken framing: the
        // status line is out, so cutting the connection is the only way to say the body is bad.
        var relayed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"id\"\r\n"u8.ToArray();
        await using var worker = new RawWorker(n => n == 1
            ? new RawReply([head, "zz\r\n"u8.ToArray()], BeforeLaterParts: relayed.Task)
            : RawReply.Of(RawWorker.Json(VllmBody)));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        using (var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)), HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsStreamAsync();
            var first = new byte[5];
            await body.ReadExactlyAsync(first);
            Assert.Equal("{\"id\"", Encoding.ASCII.GetString(first));
            relayed.SetResult();
            await Assert.ThrowsAnyAsync<IOException>(() => body.CopyToAsync(Stream.Null));
        }

        using var next = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(VllmBody, await next.Content.ReadAsStringAsync());
        Assert.Equal(2, worker.Connections); // the broken connection was not pooled
    }

    [Theory]
    [InlineData("zz\r\n")]                                  // not a chunk size
    [InlineData("5\r\n{\"id\"\r\nzz\r\n")]                  // a good chunk, then garbage in the same read
    [InlineData("4\r\n{\"id\"\r\n0\r\n\r\n")]                // data longer than its chunk size
    public async Task BrokenChunkingBeforeAnyByteReachedTheClient_IsRetriedOnAnotherWorker(string framing)
    {
        var broken = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nX-Broken: yes\r\n\r\n" + framing);
        await using var bad = new RawWorker(_ => RawReply.Of(broken));
        await using var good = new RawWorker(_ => RawReply.Of(RawWorker.Json(VllmBody)));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: bad.Section(TestGateway.Model, "bad") + good.Section(TestGateway.Model, "good"));

        // Round robin: within two requests one starts on the bad worker; every one ends on the good one.
        for (var i = 0; i < 2; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(VllmBody, await response.Content.ReadAsStringAsync());
            Assert.False(response.Headers.Contains("X-Broken"), "the failed attempt's headers reached the client");
        }

        Assert.True(bad.Requests >= 1, "no request started on the bad worker");
        Assert.Equal(2, good.Requests);
        var metrics = await gateway.MetricsAfterAsync(2); // counted (and accounted) after the answers' last bytes
        Assert.Equal(bad.Requests, MetricsText.Value(metrics, "llm_gateway_retries_total", "worker=\"bad\""));
        Assert.Equal(bad.Requests, MetricsText.Value(metrics, "llm_circuit_breaker_failures_total", "worker=\"bad\""));
        Assert.Equal(2, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"200\""));
        Assert.Equal(2 * Usage(VllmBody).Completion, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task BrokenChunkingBeforeAnyByte_WithNoOtherWorker_Is502WithItsStatusLine()
    {
        var broken = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nX-Broken: yes\r\n\r\nzz\r\n"u8.ToArray();
        await using var worker = new RawWorker(_ => RawReply.Of(broken));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true)));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.False(response.Headers.Contains("X-Broken"));
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("upstream_error", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        var metrics = await gateway.MetricsAfterAsync(1); // counted after the answer's last byte
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"502\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"200\""));
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task WorkerHeaderWithANonAsciiOrControlByte_IsDropped_AndTheAnswerGoesThroughWhole()
    {
        // UTF-8 "café", a control byte, and a Latin-1 byte: Kestrel accepts none of them in a
        // response header value.
        var head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Upstream-Note: caf\u00e9\r\nX-Control: a\u0001b\r\nX-Fine: yes\r\n"u8.ToArray();
        var latin1 = "X-Latin1: caf"u8.ToArray().Append((byte)0xE9).Concat("\r\n"u8.ToArray());
        var body = Encoding.UTF8.GetBytes(VllmBody);
        var reply = head.Concat(latin1).Concat(Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n")).Concat(body).ToArray();
        await using var worker = new RawWorker(_ => RawReply.Of(reply));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        for (var i = 0; i < 2; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(VllmBody, await response.Content.ReadAsStringAsync());
            Assert.Equal("yes", response.Headers.GetValues("X-Fine").Single());
            foreach (var dropped in new[] { "X-Upstream-Note", "X-Control", "X-Latin1" })
            {
                Assert.False(response.Headers.Contains(dropped), dropped + " reached the client");
            }
        }

        Assert.Equal(1, worker.Connections); // the connection stayed good for the next request
        var metrics = await gateway.MetricsAfterAsync(2); // accounted after the answers' last bytes
        Assert.Equal(2 * Usage(VllmBody).Completion, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_circuit_breaker_failures_total", "worker=\"raw\""));
        Assert.Equal(0, (await Fleet.BreakerAsync(gateway, "raw")).GetProperty("failures").GetInt64());
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

    [Fact]
    public async Task WorkerHeadersItsConnectionHeaderNames_AreNotRelayed()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(VllmBody, "Connection: keep-alive, X-Worker-Hop\r\nX-Worker-Hop: 1\r\nX-Kept: 2\r\n")));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("X-Kept").Single());
        Assert.False(response.Headers.Contains("X-Worker-Hop"));
    }

    private static (long Prompt, long Completion) Usage(string json)
    {
        using var document = JsonDocument.Parse(json);
        var usage = document.RootElement.GetProperty("usage");
        return (usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());
    }
}
