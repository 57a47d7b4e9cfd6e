using System.Diagnostics;
using System.Globalization;
using AotProxy.Load.Cli;
using AotProxy.Load.Profiles;
using AotProxy.Load.Scheduling;

namespace AotProxy.Load.Tests.Scheduling;

// [[mix]] start/stop (a tenant that stops or joins mid-run) and --requests, the per-request CSV
// the fairness analysis reads.
public sealed class MixWindowTests
{
    [Fact]
    public void Out_of_its_window_an_entry_skips_its_turns_and_the_others_keep_theirs()
    {
        var second = Stopwatch.Frequency;
        var picker = new MixPicker(
        [
            new MixEntry("early", 1, true, 1, 1, "", "", Stop: TimeSpan.FromSeconds(10)),
            new MixEntry("late", 1, true, 1, 1, "", "", Start: TimeSpan.FromSeconds(10)),
        ]);

        var before = Enumerable.Range(0, 100).Select(_ => picker.Next(5 * second)).ToArray();
        var after = Enumerable.Range(0, 100).Select(_ => picker.Next(10 * second)).ToArray();

        Assert.Equal((50, 50), (before.Count(m => m == 0), before.Count(m => m == -1)));
        Assert.Equal((50, 50), (after.Count(m => m == 1), after.Count(m => m == -1)));
        Assert.Equal(1, picker.NextActive(20 * second));
        Assert.Equal(0, picker.NextActive(0));
    }

    [Fact]
    public void Windows_scale_with_the_run()
    {
        var picker = new MixPicker([new MixEntry("late", 1, true, 1, 1, "", "", Start: TimeSpan.FromSeconds(10))], durationScale: 0.1);

        Assert.Equal(-1, picker.Next(Stopwatch.Frequency * 99 / 100));
        Assert.Equal(0, picker.Next(Stopwatch.Frequency));
    }

    [Fact]
    public async Task The_requests_csv_has_one_line_per_request_in_its_entrys_window()
    {
        // Nothing listens on port 9 of loopback: every request is a quick connect error, which
        // is still a request with a line.
        var file = Path.GetTempFileName();
        var outDir = Directory.CreateTempSubdirectory("aotproxy-load-").FullName;
        var csv = Path.Combine(outDir, "requests.csv");
        try
        {
            await File.WriteAllTextAsync(file, """
                [scenario]
                name = "windows"
                target = "http://127.0.0.1:9"

                [[load]]
                kind = "inject"
                rate = 40
                duration = "1s"

                [[mix]]
                name = "early"
                stop = "500ms"

                [[mix]]
                name = "late"
                start = "500ms"
                """);
            var exit = await LoadCli.RunAsync(["run", file, "--out", outDir, "--requests", csv], TextWriter.Null, TextWriter.Null, CancellationToken.None);

            Assert.Equal(LoadCli.Passed, exit);
            var lines = await File.ReadAllLinesAsync(csv);
            Assert.Equal("mix,sent_s,ttft_s,end_s,status,error,prompt_tokens,completion_tokens,send_s,head_s,body_bytes", lines[0]);
            var rows = lines.Skip(1).Select(l => l.Split(',')).ToArray();
            Assert.Equal(20, rows.Length); // 40 turns, each entry takes every other one in its half
            var early = rows.Where(r => r[0] == "early").Select(r => double.Parse(r[1], CultureInfo.InvariantCulture)).ToArray();
            var late = rows.Where(r => r[0] == "late").Select(r => double.Parse(r[1], CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal((10, 10), (early.Length, late.Length));
            Assert.All(early, s => Assert.InRange(s, 0, 0.5));
            Assert.All(late, s => Assert.InRange(s, 0.5, 1));
            Assert.All(rows, r => Assert.Equal(("", "0", "connect"), (r[2], r[4], r[5])));
            Assert.All(rows, r => Assert.True(double.Parse(r[3], CultureInfo.InvariantCulture) >= double.Parse(r[1], CultureInfo.InvariantCulture)));
            Assert.All(rows, r => Assert.Equal("", r[9])); // no response head
        }
        finally
        {
            File.Delete(file);
            Directory.Delete(outDir, recursive: true);
        }
    }
}
