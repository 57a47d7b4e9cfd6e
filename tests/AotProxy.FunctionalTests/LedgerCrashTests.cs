using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Ledger;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// The real executable (the AOT binary in CI) killed with SIGKILL under load: the ledger loses at
// most the rows of the last batch interval, and the restarted gateway's monthly counters and
// budgets are exactly what the ledger holds: budget left = budget - the ledger's usage (tokens and
// cost at the configured prices), so the crash cost the budget at most the lost batch.
public class LedgerCrashTests
{
    private static readonly TimeSpan BatchInterval = TimeSpan.FromMilliseconds(200);

    private const long BudgetTokens = 50_000_000;
    private const long MonthlyBudgetTokens = 40_000_000;
    private const long BudgetNanos = 1_000_000_000_000; // $1,000

    // acme gets budgets (far above what the run uses) and the model a price, so that the seeded
    // spend is checked in tokens and in nano-USD.
    private static readonly string Budgets = $$"""

        [[tenants]]
        name = "payg"
        api_key_sha256 = ["{{AotProxy.Identity.ApiKeyIndex.HashKey(PaygKey)}}"]
        budget_tokens = {{BudgetTokens}}
        monthly_budget_tokens = {{MonthlyBudgetTokens}}
        budget_usd = 1000.0

        [[prices]]
        model = "{{TestGateway.Model}}"
        input_per_million = 0.15
        output_per_million = 0.6
        """;

    private const string PaygKey = "sk-test-payg";

    [Fact]
    public async Task Sigkill_UnderLoad_LosesAtMostTheLastBatchInterval_AndARestartSeedsTheRest()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-crash-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        var ledger = Path.Combine(directory.FullName, "usage.db");
        // batch_size above the 8,000 requests the clients send at most: only the interval flushes.
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $"\n[ledger]\npath = \"{ledger}\"\nbatch_interval = \"{BatchInterval.TotalMilliseconds}ms\"\nbatch_size = 10000\n" + Budgets));

        var completed = new List<int>();
        var sent = 0;
        await using (var first = GatewayProcess.Start("serve", "--config", config))
        {
            await first.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = first.DataUri, Timeout = TimeSpan.FromSeconds(10) };
            using var stop = new CancellationTokenSource();

            // Four clients in a loop, until the kill. Bounded: 2,000 requests each at most.
            var clients = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                for (var i = 0; i < 2_000 && !stop.IsCancellationRequested; i++)
                {
                    Interlocked.Increment(ref sent);
                    try
                    {
                        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 2), key: PaygKey), stop.Token);
                        await response.Content.ReadAsStringAsync(stop.Token);
                        if (response.StatusCode == HttpStatusCode.OK)
                        {
                            lock (completed)
                            {
                                completed.Add(i);
                            }
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
                    {
                        return; // the gateway is gone
                    }
                }
            })).ToArray();

            await TestGateway.WaitUntilAsync(() => Task.FromResult(Count(completed) >= 200), "200 requests completed under load");

            // The interval's flush keeps up while the load runs: the rows of the requests completed
            // by now are reported written (llm_gateway_ledger_rows_total) before the kill, whatever
            // a loaded box adds to each batch; and what it reported is committed.
            var due = Count(completed);
            using var admin = new HttpClient { BaseAddress = first.AdminUri };
            var written = 0L;
            await TestGateway.WaitUntilAsync(
                async () => (written = (long)MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_ledger_rows_total")) >= due,
                $"the ledger reported the rows of {due} completed requests written");
            first.Kill();
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
            await stop.CancelAsync();
            await Task.WhenAll(clients);

            var rows = LedgerRows(ledger);
            Assert.True(rows >= written, $"the ledger has {rows} rows; the gateway reported {written} written before the kill");
            Assert.True(rows <= sent, $"{rows} rows for {sent} requests sent");
        }

        await using (var second = GatewayProcess.Start("serve", "--config", config))
        {
            await second.WaitForReadyAsync();
            using var admin = new HttpClient { BaseAddress = second.AdminUri };
            var tenants = await admin.GetStringAsync("/api/tenants");
            using var json = System.Text.Json.JsonDocument.Parse(tenants);
            var payg = Fleet.Named(json.RootElement, "payg");
            var tokens = LedgerTokens(ledger, "payg");
            var nanos = Scalar(ledger, "SELECT COALESCE(SUM(cost_nanos), 0) FROM requests WHERE tenant = 'payg'");
            Assert.True(tokens > 0 && nanos > 0, $"the ledger holds {tokens} tokens and {nanos} nano-USD for payg");
            Assert.Equal(tokens, payg.GetProperty("month_tokens").GetInt64());
            Assert.Equal(BudgetTokens - tokens, payg.GetProperty("budget_left_tokens").GetInt64());
            Assert.Equal(MonthlyBudgetTokens - tokens, payg.GetProperty("monthly_budget_left_tokens").GetInt64());
            Assert.Equal((BudgetNanos - nanos) / 1_000_000_000m, payg.GetProperty("budget_left_usd").GetDecimal());
            Assert.Equal(nanos / 1_000_000_000m, payg.GetProperty("spent_usd").GetDecimal());
            second.SendSigterm();
            Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        }

        directory.Delete(recursive: true);
    }

    // SIGKILL with streams in flight: 150 admitted streams mid-generation, 50 more waiting for a
    // slot. After a restart every admitted stream has exactly one row, `interrupted`, with its
    // prompt estimate (the tokens the worker's prefill consumed); the waiting ones, which consumed
    // nothing, have none; streams that finished before the kill keep their one row; and the
    // budgets seeded from the ledger charge the interrupted ones. A second restart adds nothing.
    [Fact]
    public async Task Sigkill_WithStreamsInFlight_RecordsEachAdmittedStreamOnceAsInterrupted()
    {
        const int Slots = 150;
        const int Waiting = 50;
        const int Finished = 20;
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = Slots, DecodeTokensPerSecond = 5, NumGpuBlocks = 65_536 },
            new IPEndPoint(IPAddress.Loopback, 0),
            NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-crash-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        var ledger = Path.Combine(directory.FullName, "usage.db");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $"\n[ledger]\npath = \"{ledger}\"\nbatch_interval = \"{BatchInterval.TotalMilliseconds}ms\"\n" + Budgets));

        var admitted = new List<string>();
        var all = Enumerable.Range(0, Slots + Waiting).Select(i => $"cut-{i}").ToArray();
        await using (var first = GatewayProcess.Start("serve", "--config", config))
        {
            await first.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = first.DataUri, Timeout = Timeout.InfiniteTimeSpan };

            // Short streams (8 tokens at 5 tokens/s: ~1.6 s, several batch intervals) that finish before the kill.
            await Task.WhenAll(Enumerable.Range(0, Finished).Select(async i =>
            {
                using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 8), key: PaygKey, requestId: $"done-{i}"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.EndsWith("data: [DONE]\n\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }));

            // Long streams (1,000 tokens at 5 tokens/s): a stream whose response head arrived was admitted.
            using var cut = new CancellationTokenSource();
            var streams = all.Select(id => Task.Run(async () =>
            {
                try
                {
                    using var response = await http.SendAsync(
                        TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 1_000), key: PaygKey, requestId: id), HttpCompletionOption.ResponseHeadersRead, cut.Token);
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    lock (admitted)
                    {
                        admitted.Add(id);
                    }

                    await response.Content.CopyToAsync(Stream.Null, cut.Token);
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
                {
                    // the gateway is gone
                }
            })).ToArray();

            using var admin = new HttpClient { BaseAddress = first.AdminUri };
            await TestGateway.WaitUntilAsync(
                async () => Count(admitted) == Slots && MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_queue_depth") == Waiting,
                $"{Slots} streams admitted and {Waiting} waiting");

            // The ledger's queue is FIFO: once a request finished after every admission has its
            // row on disk, whatever the gateway queued at those admissions is on disk too.
            using (var marker = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), key: TestGateway.LimitedKey, requestId: "marker")))
            {
                Assert.Equal(HttpStatusCode.Forbidden, marker.StatusCode);
            }

            await TestGateway.WaitUntilAsync(() => Task.FromResult(Scalar(ledger, "SELECT COUNT(*) FROM requests WHERE request_id = 'marker'") == 1), "the marker's row on disk");
            first.Kill();
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
            await cut.CancelAsync();
            await Task.WhenAll(streams);
        }

        Assert.Equal(Slots, admitted.Count);
        await using (var second = GatewayProcess.Start("serve", "--config", config))
        {
            await second.WaitForReadyAsync();
            foreach (var id in all)
            {
                var rows = Scalar(ledger, $"SELECT COUNT(*) FROM requests WHERE request_id = '{id}'");
                var interrupted = Scalar(ledger, $"SELECT COUNT(*) FROM requests WHERE request_id = '{id}' AND outcome = 'interrupted' AND estimated = 1 AND prompt_tokens > 0 AND tenant = 'payg' AND model = '{TestGateway.Model}'");
                Assert.True(admitted.Contains(id) ? rows == 1 && interrupted == 1 : rows == 0, $"{id} (admitted: {admitted.Contains(id)}): {rows} rows, {interrupted} interrupted with a prompt estimate");
            }

            for (var i = 0; i < Finished; i++)
            {
                Assert.Equal(1, Scalar(ledger, $"SELECT COUNT(*) FROM requests WHERE request_id = 'done-{i}' AND status = 200 AND outcome <> 'interrupted' AND estimated = 0"));
            }

            Assert.Equal(0, Scalar(ledger, "SELECT COUNT(*) FROM (SELECT request_id FROM requests GROUP BY request_id HAVING COUNT(*) > 1)"));

            // The interrupted streams' prompt estimates are charged: the budgets seeded at this
            // start are the budgets minus everything the ledger holds for payg, those rows included.
            using var admin = new HttpClient { BaseAddress = second.AdminUri };
            using var json = System.Text.Json.JsonDocument.Parse(await admin.GetStringAsync("/api/tenants"));
            var payg = Fleet.Named(json.RootElement, "payg");
            var interruptedTokens = Scalar(ledger, "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM requests WHERE outcome = 'interrupted'");
            var interruptedNanos = Scalar(ledger, "SELECT COALESCE(SUM(cost_nanos), 0) FROM requests WHERE outcome = 'interrupted'");
            Assert.True(interruptedTokens > 0 && interruptedNanos > 0, $"interrupted: {interruptedTokens} tokens, {interruptedNanos} nano-USD");
            var tokens = LedgerTokens(ledger, "payg");
            var nanos = Scalar(ledger, "SELECT COALESCE(SUM(cost_nanos), 0) FROM requests WHERE tenant = 'payg'");
            Assert.Equal(BudgetTokens - tokens, payg.GetProperty("budget_left_tokens").GetInt64());
            Assert.Equal((BudgetNanos - nanos) / 1_000_000_000m, payg.GetProperty("budget_left_usd").GetDecimal());
            second.SendSigterm();
            Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        }

        var before = LedgerRows(ledger);
        await using (var third = GatewayProcess.Start("serve", "--config", config))
        {
            await third.WaitForReadyAsync();
            Assert.Equal(before, LedgerRows(ledger));
            third.SendSigterm();
            Assert.Equal(0, await third.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        }

        directory.Delete(recursive: true);
    }

    private static int Count<T>(List<T> completed)
    {
        lock (completed)
        {
            return completed.Count;
        }
    }

    private static long LedgerRows(string path) => Scalar(path, "SELECT COUNT(*) FROM requests");

    private static long LedgerTokens(string path, string tenant) =>
        Scalar(path, $"SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM requests WHERE tenant = '{tenant}'");

    private static long Scalar(string path, string sql)
    {
        using var connection = LedgerDatabase.Open(path, create: false);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }
}
