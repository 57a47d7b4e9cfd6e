using System.Diagnostics;
using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Ledger;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// The real executable (the AOT binary in CI) killed with SIGKILL under load: the ledger loses at
// most the rows of the last batch interval, and the restarted gateway's monthly counters are
// exactly what the ledger holds.
public class LedgerCrashTests
{
    private static readonly TimeSpan BatchInterval = TimeSpan.FromMilliseconds(200);

    // What a loaded CI box may add between a response reaching the client and its row being
    // queued, and between the writer's timer and its commit.
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Sigkill_UnderLoad_LosesAtMostTheLastBatchInterval_AndARestartSeedsTheRest()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-crash-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        var ledger = Path.Combine(directory.FullName, "usage.db");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $"\n[ledger]\npath = \"{ledger}\"\nbatch_interval = \"{BatchInterval.TotalMilliseconds}ms\"\n"));

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
                        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 2)), stop.Token);
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
            var acme = Fleet.Named(json.RootElement, "acme");
            Assert.Equal(LedgerTokens(ledger, "acme"), acme.GetProperty("month_tokens").GetInt64());
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
