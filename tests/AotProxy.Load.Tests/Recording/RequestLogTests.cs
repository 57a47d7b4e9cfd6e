using System.Globalization;
using AotProxy.Load.Cli;
using AotProxy.Load.Tests.Support;

namespace AotProxy.Load.Tests.Recording;

// The per-request CSV's columns for perf/limits_report.py: when the send actually began and when
// the response head came back (the gateway decided in between), and the body size it estimates
// the prompt from.
public sealed class RequestLogTests
{
    private static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task Every_line_brackets_the_servers_answer_between_send_and_head_and_carries_the_body_size()
    {
        // Every even arrival gets a 429 (the runner's warm-up request is arrival 1), all after 100 ms.
        await using var server = await StubServer.StartAsync(_ => Delay, arrival => arrival % 2 == 0 ? 429 : 200);
        var file = Path.GetTempFileName();
        var outDir = Directory.CreateTempSubdirectory("aotproxy-load-").FullName;
        var csv = Path.Combine(outDir, "requests.csv");
        try
        {
            await File.WriteAllTextAsync(file, $"""
                [scenario]
                name = "log"
                target = "{server.BaseUri}"

                [[load]]
                kind = "inject"
                rate = 20
                duration = "500ms"

                [[mix]]
                name = "plain"
                stream = false
                prompt_chars = 200
                """);
            var exit = await LoadCli.RunAsync(["run", file, "--out", outDir, "--requests", csv], TextWriter.Null, TextWriter.Null, CancellationToken.None);

            Assert.Equal(LoadCli.Passed, exit); // no thresholds
            var lines = await File.ReadAllLinesAsync(csv);
            var columns = lines[0].Split(',');
            var rows = lines.Skip(1).Select(l => l.Split(',')).ToArray();
            Assert.Equal(10, rows.Length);
            double At(string[] row, string column) => double.Parse(row[Array.IndexOf(columns, column)], CultureInfo.InvariantCulture);
            string Text(string[] row, string column) => row[Array.IndexOf(columns, column)];

            // One fixed body per request, so its size is the server's total over its arrivals.
            Assert.Equal(server.BodyBytes / server.Arrivals, At(rows[0], "body_bytes"));
            Assert.True(At(rows[0], "body_bytes") > 200);
            Assert.All(rows, r =>
            {
                Assert.Equal(At(rows[0], "body_bytes"), At(r, "body_bytes"));
                Assert.InRange(At(r, "send_s"), At(r, "sent_s"), At(r, "head_s"));
                // The stub waits by the Stopwatch, so the full delay lies between send and head
                // (less 2 µs: the CSV rounds each time to the microsecond).
                Assert.True(At(r, "head_s") - At(r, "send_s") >= Delay.TotalSeconds - 0.000002, $"head {At(r, "head_s")}, send {At(r, "send_s")}");
                Assert.InRange(At(r, "head_s"), At(r, "send_s"), At(r, "end_s"));
            });

            var refused = rows.Where(r => Text(r, "status") == "429").ToArray();
            var served = rows.Where(r => Text(r, "status") == "200").ToArray();
            Assert.Equal(10, refused.Length + served.Length);
            Assert.InRange(refused.Length, 4, 6); // arrivals reach the server in about send order
            Assert.All(refused, r => Assert.Equal(("http_status", "0", "0"), (Text(r, "error"), Text(r, "prompt_tokens"), Text(r, "completion_tokens"))));
            Assert.All(served, r => Assert.Equal(("", "5", "1"), (Text(r, "error"), Text(r, "prompt_tokens"), Text(r, "completion_tokens"))));
        }
        finally
        {
            File.Delete(file);
            Directory.Delete(outDir, recursive: true);
        }
    }
}
