using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Ledger;

namespace AotProxy.FunctionalTests;

// The usage ledger end to end: every identified request, whatever its outcome, is one row in the
// SQLite file next to the test's config; /api/usage sums the same rows; a restart on the same file
// seeds the monthly counters.
public class LedgerTests
{
    private const string RateLimitedKey = "sk-test-rl";

    [Fact]
    public async Task EveryOutcome_IsExactlyOneRow_WithItsStatusTokensAndOutcome()
    {
        await using var gateway = await TestGateway.StartAsync(
            workers: 1,
            configure: o =>
            {
                o.MaxNumSeqs = 1; // one slot: a second request queues behind a running stream
                o.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(20);
            },
            extraToml: $"""

                [[classes]]
                name = "default"
                max_queue_wait = "200ms"

                [[tenants]]
                name = "rl"
                api_key_sha256 = ["{ApiKeyIndex.HashKey(RateLimitedKey)}"]
                rpm = 1

                [ledger]
                batch_interval = "50ms"
                """);
        var worker = gateway.Workers[0];

        // 200, exact usage.
        using (var success = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), requestId: "ok")))
        {
            Assert.Equal(HttpStatusCode.OK, success.StatusCode);
        }

        // An upstream 500, passed through: no usage.
        worker.Options.Faults.Http500Rate = 1.0;
        using (var failed = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), requestId: "upstream-500")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        worker.Options.Faults.Http500Rate = 0;

        // A stream holds the one slot; a request behind it waits max_queue_wait and gets 503;
        // then the stream's client goes away mid-stream.
        var aborted = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 500), requestId: "abort"), HttpCompletionOption.ResponseHeadersRead);
        var stream = await aborted.Content.ReadAsStreamAsync();
        Assert.True(await stream.ReadAsync(new byte[64]) > 0);
        using (var timedOut = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), requestId: "queue-timeout")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, timedOut.StatusCode);
        }

        aborted.Dispose();
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.Aborted == 1), "the worker saw the abort");

        // The aborted stream frees the one slot in its finally, after the worker saw the abort: with
        // the slot still held, the next request would queue and could outlast max_queue_wait (200 ms)
        // on a loaded host. It is counted after it freed the slot: wait for the first four counted.
        await gateway.MetricsAfterAsync(4);

        // rpm = 1: the second request in a row is 429.
        using (var first = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 2), RateLimitedKey, requestId: "rpm-ok")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using (var limited = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), RateLimitedKey, requestId: "rpm-429")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        }

        // 404: a model nobody serves. 401: no row (no tenant to charge).
        using (var notFound = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", "{\"model\":\"no-such-model\",\"messages\":[]}", requestId: "not-found")))
        {
            Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        }

        using (var unknown = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), "sk-nobody", requestId: "unidentified")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        }

        var ledger = gateway.Host.Ledger!;
        await TestGateway.WaitUntilAsync(() => Task.FromResult(ledger.Written >= 7), "the ledger wrote 7 rows");
        var rows = LedgerFile.ReadRows(ledger.Path);
        Assert.Equal(["abort", "not-found", "ok", "queue-timeout", "rpm-429", "rpm-ok", "upstream-500"], rows.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(7, rows.Count); // and no request id twice: ReadRows keys them

        var ok = rows["ok"];
        Assert.Equal((200, LedgerOutcome.Admitted, "acme", "sim-0", false), (ok.Status, ok.Outcome, ok.Tenant, ok.Worker, ok.Estimated));
        Assert.Equal(ApiKeyIndex.HashKey(TestGateway.Key)[..8], ok.KeyId);
        Assert.True(ok.Prompt > 0 && ok.Completion is > 0 and <= 4, $"{ok.Prompt}/{ok.Completion}");
        Assert.NotNull(ok.TtftMs);
        Assert.Equal(TestGateway.Model, ok.Model);

        var upstream = rows["upstream-500"];
        Assert.Equal((500, "sim-0", 0L, 0L), (upstream.Status, upstream.Worker, upstream.Prompt, upstream.Completion));

        var abort = rows["abort"];
        Assert.Equal((499, true), (abort.Status, abort.Estimated)); // the client went away; usage is the gateway's estimate
        Assert.True(abort.Completion is > 0 and < 500, $"{abort.Completion} chunks relayed before the abort");

        var timeout = rows["queue-timeout"];
        Assert.Equal((503, LedgerOutcome.TimedOut, "", 0L), (timeout.Status, timeout.Outcome, timeout.Worker, timeout.Prompt));
        Assert.True(timeout.QueueWaitMs >= 150, $"waited {timeout.QueueWaitMs} ms");

        Assert.Equal((200, "rl"), (rows["rpm-ok"].Status, rows["rpm-ok"].Tenant));
        Assert.Equal((429, LedgerOutcome.RateLimited, "rl", 0L), (rows["rpm-429"].Status, rows["rpm-429"].Outcome, rows["rpm-429"].Tenant, rows["rpm-429"].Prompt));
        Assert.Equal((404, LedgerOutcome.Rejected, "no-such-model"), (rows["not-found"].Status, rows["not-found"].Outcome, rows["not-found"].Model));

        // /api/usage sums the same rows; /api/status shows the writer's counters.
        var usage = await Fleet.GetJsonAsync(gateway, "/api/usage?by=tenant&since=2000-01-01");
        Assert.Equal("tenant", usage.GetProperty("by").GetString());
        var acme = usage.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("key").GetString() == "acme");
        var acmeRows = rows.Values.Where(r => r.Tenant == "acme").ToArray();
        Assert.Equal(acmeRows.Length, acme.GetProperty("requests").GetInt64());
        Assert.Equal(acmeRows.Sum(r => r.Prompt), acme.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(acmeRows.Sum(r => r.Completion), acme.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(1, acme.GetProperty("estimated_requests").GetInt64());
        Assert.Equal(4, acme.GetProperty("errors").GetInt64()); // 500, 499, 503, 404
        var status = await Fleet.GetJsonAsync(gateway, "/api/status");
        Assert.Equal(7, status.GetProperty("ledger").GetProperty("rows_written").GetInt64());
        Assert.Equal(0, status.GetProperty("ledger").GetProperty("rows_dropped").GetInt64());
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(7, MetricsText.Value(metrics, "llm_gateway_ledger_rows_total"));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_ledger_dropped_total"));

        using var badQuery = await gateway.Admin.GetAsync("/api/usage?by=worker");
        Assert.Equal(HttpStatusCode.BadRequest, badQuery.StatusCode);
    }

    [Fact]
    public async Task Restart_OnTheSameLedger_SeedsTheMonthTokens_AndDisposeFlushesTheLastRows()
    {
        var directory = Directory.CreateTempSubdirectory("aotproxy-ledger-restart-");
        try
        {
            // A long interval: only the flush on dispose can have written the rows.
            var extra = $"""

                [ledger]
                path = "{Path.Combine(directory.FullName, "usage.db")}"
                batch_interval = "1m"
                """;
            long used;
            await using (var first = await TestGateway.StartAsync(workers: 1, extraToml: extra))
            {
                for (var i = 0; i < 2; i++)
                {
                    using var response = await first.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 5)));
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                }

                var acme = await Fleet.TenantAfterAsync(first, "acme", 2);
                used = acme.GetProperty("prompt_tokens").GetInt64() + acme.GetProperty("completion_tokens").GetInt64();
                Assert.Equal(used, acme.GetProperty("month_tokens").GetInt64());
                Assert.Equal(0, first.Host.Ledger!.Written);
            }

            await using var second = await TestGateway.StartAsync(workers: 1, extraToml: extra);
            var seeded = Fleet.Named(await Fleet.GetJsonAsync(second, "/api/tenants"), "acme");
            Assert.Equal(used, seeded.GetProperty("month_tokens").GetInt64());
            Assert.Equal(0, seeded.GetProperty("requests").GetInt64()); // since this start

            using (var response = await second.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 5))))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            var after = await Fleet.TenantAfterAsync(second, "acme", 1);
            Assert.Equal(used + after.GetProperty("prompt_tokens").GetInt64() + after.GetProperty("completion_tokens").GetInt64(), after.GetProperty("month_tokens").GetInt64());
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    // An admitted request is one row, and its final row settles its journal entry: nothing is left
    // for the next start to record as interrupted, which would count the request twice.
    [Fact]
    public async Task AdmittedRequest_IsOneRow_AndSettlesItsJournalEntry()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(Fixtures.Text("openai/chat_nonstream.json"))));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model) + "\n[ledger]\nbatch_interval = \"50ms\"\n");

        using (var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), requestId: "served")))
        {
            Assert.Equal(1, worker.Requests);
        }

        var ledger = gateway.Host.Ledger!;
        await TestGateway.WaitUntilAsync(() => Task.FromResult(ledger.Written == 1), "the request's row written");
        Assert.Equal(["served"], LedgerFile.ReadRows(ledger.Path).Keys);
        using var connection = LedgerDatabase.Open(ledger.Path, create: false);
        using var journal = connection.CreateCommand();
        journal.CommandText = "SELECT COUNT(*) FROM journal";
        Assert.Equal(0L, journal.ExecuteScalar());
    }

    [Fact]
    public async Task LedgerOff_ServesAndRecordsNothing_AndApiUsageSaysSo()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: "\n[ledger]\npath = \"\"\n");
        using (var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 2))))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Null(gateway.Host.Ledger);
        Assert.Empty(Directory.GetFiles(gateway.Directory, "*.db*"));
        using var usage = await gateway.Admin.GetAsync("/api/usage");
        Assert.Equal(HttpStatusCode.NotFound, usage.StatusCode);
        Assert.Contains("ledger_disabled", await usage.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var status = await Fleet.GetJsonAsync(gateway, "/api/status");
        Assert.Equal(JsonValueKind.Null, status.GetProperty("ledger").ValueKind);
    }
}
