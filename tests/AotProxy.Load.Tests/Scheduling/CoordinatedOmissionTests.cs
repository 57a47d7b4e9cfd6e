using System.Diagnostics;
using AotProxy.Load.Profiles;
using AotProxy.Load.Recording;
using AotProxy.Load.Scheduling;
using AotProxy.Load.Tests.Support;

namespace AotProxy.Load.Tests.Scheduling;

// 200 requests at 200/s; somewhere in the middle 200 ms of time is lost, once. About 40 requests
// were meant to go out during those 200 ms, and each of them really did wait 0..200 ms: an honest
// runner reports a tail of ~40 slow requests (p99 near 200 ms), not one slow request and 199 fast
// ones (which is what a closed-loop runner, or one timing from the actual send, would report).
[Collection(TimingSensitive.Name)]
public sealed class CoordinatedOmissionTests
{
    private const int Rate = 200;
    // Arrivals before the measured run: the runner's own warm-up (one request per mix entry), the
    // test's warm-up run (200/s for 100 ms), and the measured run's runner warm-up.
    private const int WarmUpRequests = 1 + (Rate / 10) + 1;
    private static readonly TimeSpan Stall = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task A_server_that_stalls_once_shows_in_every_request_scheduled_during_the_stall()
    {
        // The 80th arrival after the warm-up (about 400 ms in) freezes the server for 200 ms: everything that arrives
        // before the freeze ends waits for it, like a GC pause or a full accept queue.
        var stallEnds = 0L;
        await using var server = await StubServer.StartAsync(arrival =>
        {
            var now = Stopwatch.GetTimestamp();
            if (arrival == WarmUpRequests + 80)
            {
                Interlocked.Exchange(ref stallEnds, now + (long)(Stall.TotalSeconds * Stopwatch.Frequency));
            }

            var end = Interlocked.Read(ref stallEnds);
            return end > now ? Stopwatch.GetElapsedTime(now, end) : TimeSpan.Zero;
        });

        var result = await RunAsync(server.BaseUri, new RunOptions());
        var latency = result.Total.Latency;

        Assert.Equal(Rate, result.Total.Ok);
        Assert.True(latency.Max >= 180_000, $"max {latency.Max} µs");
        Assert.True(latency.ValueAtPercentile(99) >= 150_000, $"p99 {latency.ValueAtPercentile(99)} µs");
        Assert.True(latency.CountAtOrAbove(100_000) >= 15, $"{latency.CountAtOrAbove(100_000)} requests took 100 ms or more");
    }

    [Fact]
    public async Task A_runner_that_falls_behind_reports_late_sends_and_times_from_the_intended_send()
    {
        // The server is fast; the runner's own scheduling thread is stopped for 200 ms before its
        // 40th send. The ~40 requests due in that time go out late, in a rush, and are answered
        // fast, but their users waited from the intended time.
        await using var server = await StubServer.StartAsync(_ => TimeSpan.Zero);
        var result = await RunAsync(server.BaseUri, new RunOptions
        {
            BeforeOpenLoopSend = index =>
            {
                if (index == 40)
                {
                    Thread.Sleep(Stall);
                }
            },
        });
        var total = result.Total;

        Assert.Equal(Rate, total.Ok);
        Assert.True(total.LateSends >= 30, $"{total.LateSends} late sends");
        Assert.True(total.MaxLagMicroseconds >= 190_000, $"max lag {total.MaxLagMicroseconds} µs");
        Assert.True(total.Latency.Max >= 190_000, $"max {total.Latency.Max} µs");
        Assert.True(total.Latency.ValueAtPercentile(99) >= 150_000, $"p99 {total.Latency.ValueAtPercentile(99)} µs");
        Assert.True(total.Latency.CountAtOrAbove(100_000) >= 15, $"{total.Latency.CountAtOrAbove(100_000)} requests took 100 ms or more");
    }

    [Fact]
    public async Task Requests_over_the_in_flight_cap_are_dropped_without_waiting()
    {
        // The measured run's answers are held until the runner has dropped the other 190 sends: with
        // a cap of 10 they are dropped on schedule. (They were held 2 s before: a runner that fell
        // more than a second behind on a loaded host saw the first 10 answered, and sent more.)
        var log = new RequestLog();
        var dropped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StubServer.StartAsync(_ => TimeSpan.Zero, holdFor: arrival => arrival > WarmUpRequests ? dropped.Task : Task.CompletedTask);
        var started = Stopwatch.GetTimestamp();
        var running = RunAsync(server.BaseUri, new RunOptions { Log = log }, maxInFlight: 10);
        // Each drop is logged as it happens; the 10 held answers are logged only once released.
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30); log.Count < Rate - 10 && !running.IsCompleted && DateTime.UtcNow < deadline;)
        {
            await Task.Delay(10);
        }

        dropped.SetResult();
        var result = await running;

        Assert.Equal(Rate, result.Total.Requests);
        Assert.Equal(10, result.Total.Ok);
        Assert.Equal(Rate - 10, result.Total.Errors()[ErrorKinds.Name(ErrorKind.Dropped)]);
        Assert.Equal(WarmUpRequests + 10, server.Arrivals);
        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(15));
    }

    private static async Task<RunResult> RunAsync(Uri target, RunOptions options, int maxInFlight = 10_000)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Warm up first (a tenth of the run, at the same rate):
        // the first requests of a fresh process wait for the JIT, and on a busy 2-core machine
        // that alone is a stall of a second, which would hide the one under test.
        var warmUp = await new LoadRunner(Profile(target, 10_000, "100ms"), new RunOptions()).RunAsync(timeout.Token);
        Assert.Equal(Rate / 10, warmUp.Total.Ok);
        return await new LoadRunner(Profile(target, maxInFlight, "1s"), options).RunAsync(timeout.Token);
    }

    private static LoadProfile Profile(Uri target, int maxInFlight, string duration)
    {
        var loaded = ProfileLoader.Parse($"""
            [scenario]
            name = "co"
            target = "{target}"
            timeout = "10s"
            max_in_flight = {maxInFlight}

            [[load]]
            kind = "inject"
            rate = {Rate}
            duration = "{duration}"
            """, "co", "test");
        return loaded.Profile ?? throw new InvalidOperationException(string.Join("\n", loaded.Errors));
    }
}
