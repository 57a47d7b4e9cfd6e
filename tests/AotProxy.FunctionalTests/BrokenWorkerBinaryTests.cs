using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Ledger;

namespace AotProxy.FunctionalTests;

// The real executable (the AOT binary in CI) in front of workers that answer in ways Kestrel
// cannot relay as is (a header value with a non-ASCII or control byte) or break their framing
// before the first body byte. Each request still gets a clean answer, and its ledger row says
// what the client got, from which worker, with what usage.
public class BrokenWorkerBinaryTests
{
    private static readonly string VllmBody = Fixtures.Text("openai/chat_nonstream.json");

    [Fact]
    public async Task Serve_WorkerHeaderWithANonAsciiOrControlByte_IsDropped_AndTheRowHasTheWorkerAndItsTokens()
    {
        var reply = Encoding.UTF8.GetBytes(RawHead("X-Upstream-Note: café\r\nX-Control: a\u0001b\r\nX-Fine: yes\r\nContent-Type: application/json\r\n", VllmBody) + VllmBody);
        await using var worker = new RawWorker(_ => RawReply.Of(reply));
        var directory = Directory.CreateTempSubdirectory("aotproxy-broken-worker-");
        var ledger = Path.Combine(directory.FullName, "usage.db");
        await using var gateway = await StartAsync(directory, ledger, worker.Section(TestGateway.Model));
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        using (var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), requestId: "note")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(VllmBody, await response.Content.ReadAsStringAsync());
            Assert.Equal("yes", response.Headers.GetValues("X-Fine").Single());
            Assert.False(response.Headers.Contains("X-Upstream-Note"));
            Assert.False(response.Headers.Contains("X-Control"));
        }

        var row = await RowAsync(ledger, "note");
        var usage = Usage(VllmBody);
        Assert.Equal((200, "raw", LedgerOutcome.Admitted), (row.Status, row.Worker, row.Outcome));
        Assert.Equal(usage, (row.Prompt, row.Completion));
        using var breakers = JsonDocument.Parse(await admin.GetStringAsync("/api/circuit-breaker/stats"));
        Assert.Equal(0, Fleet.Named(breakers.RootElement, "raw").GetProperty("failures").GetInt64());
        Assert.Equal(0, MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_requests_total", "status=\"500\""));
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Serve_BrokenChunkingBeforeAnyByte_IsRetriedOnAnotherWorker_Or502_AndTheLedgerSaysSo()
    {
        var broken = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        await using var bad = new RawWorker(_ => RawReply.Of(broken));
        await using var good = new RawWorker(_ => RawReply.Of(RawWorker.Json(VllmBody)));
        var directory = Directory.CreateTempSubdirectory("aotproxy-broken-worker-");
        var ledger = Path.Combine(directory.FullName, "usage.db");
        await using var gateway = await StartAsync(directory, ledger, bad.Section(TestGateway.Model, "bad") + good.Section(TestGateway.Model, "good") + """

            [circuit_breaker]
            failure_threshold = 100
            """);
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        // Round robin: within two requests one starts on the bad worker and is retried on the good one.
        for (var i = 0; i < 2; i++)
        {
            using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), requestId: $"retried-{i}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(VllmBody, await response.Content.ReadAsStringAsync());
        }

        Assert.True(bad.Requests >= 1, "no request started on the bad worker");
        var usage = Usage(VllmBody);
        for (var i = 0; i < 2; i++)
        {
            var row = await RowAsync(ledger, $"retried-{i}");
            Assert.Equal((200, "good"), (row.Status, row.Worker));
            Assert.Equal(usage, (row.Prompt, row.Completion));
        }

        // With the good worker drained, nothing is left to retry on: a 502 with its status line.
        using (var drain = await admin.PostAsync("/api/workers/good/drain", null))
        {
            Assert.Equal(HttpStatusCode.OK, drain.StatusCode);
        }

        using (var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true), requestId: "alone")))
        {
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("upstream_error", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        }

        var alone = await RowAsync(ledger, "alone");
        Assert.Equal((502, "bad", 0L, 0L), (alone.Status, alone.Worker, alone.Prompt, alone.Completion));
        await TestGateway.WaitUntilAsync(async () => MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_active_requests") == 0, "nothing is in flight");
        directory.Delete(recursive: true);
    }

    private static async Task<GatewayProcess> StartAsync(DirectoryInfo directory, string ledger, string workers)
    {
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([], extra: workers + $"""

            [ledger]
            path = "{ledger}"
            batch_interval = "100ms"
            """));
        var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        return gateway;
    }

    private static string RawHead(string headers, string body) =>
        $"HTTP/1.1 200 OK\r\n{headers}Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n";

    private static (long Prompt, long Completion) Usage(string json)
    {
        using var document = JsonDocument.Parse(json);
        var usage = document.RootElement.GetProperty("usage");
        return (usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());
    }

    // The request's row, once the writer has committed it (batch_interval 100 ms).
    private static async Task<Row> RowAsync(string ledger, string requestId)
    {
        Row? row = null;
        await TestGateway.WaitUntilAsync(() => Task.FromResult((row = Read(ledger, requestId)) is not null), $"the ledger row of {requestId}");
        return row!;
    }

    private static Row? Read(string path, string requestId)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        using var connection = LedgerDatabase.Open(path, create: false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT worker, prompt_tokens, completion_tokens, status, outcome FROM requests WHERE request_id = $id";
        command.Parameters.AddWithValue("$id", requestId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? new Row(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt32(3), reader.GetString(4)) : null;
    }

    private sealed record Row(string Worker, long Prompt, long Completion, int Status, string Outcome);
}
