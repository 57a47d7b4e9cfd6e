using System.Diagnostics;
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

    // What a loaded CI box may add between a response reaching the client and its row being
    // queued, and between the writer's timer and its commit.
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(1);

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
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $"\n[ledger]\npath = \"{ledger}\"\nbatch_interval = \"{BatchInterval.TotalMilliseconds}ms\"\n" + Budgets));

        var clock = Stopwatch.StartNew();
        var completed = new List<TimeSpan>();
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
                                completed.Add(clock.Elapsed);
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
            await Task.Delay(BatchInterval * 3); // load keeps running across a few batches
            var killedAt = clock.Elapsed;
            first.Kill();
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
            await stop.CancelAsync();
            await Task.WhenAll(clients);

            var rows = LedgerRows(ledger);
            var mustHave = completed.Count(t => t < killedAt - BatchInterval - Slack);
            Assert.True(mustHave > 0, "load ran long enough before the kill for rows to be due");
            Assert.True(rows >= mustHave, $"the ledger has {rows} rows; {mustHave} requests completed more than one batch interval (+{Slack.TotalSeconds} s) before the kill");
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

    private static int Count(List<TimeSpan> completed)
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
