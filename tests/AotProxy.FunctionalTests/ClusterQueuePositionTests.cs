using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;

namespace AotProxy.FunctionalTests;

// Issue 20's queue position and grant rate, fleet-wide, through the real executable (the AOT binary
// in CI) on a real redis-server: one worker with one slot, shared by two replicas. A long stream on
// A holds the slot and two requests wait in A's queue; on B one request holds B's admission slot
// (or waits in its queue) and a stream that asked for queue updates waits in B's queue behind it.
// Its position counts A's two waiters too, and /api/queues on B shows the fleet's grant rate (A's
// grant included).
public sealed partial class ClusterQueuePositionTests : IAsyncLifetime
{
    private ClusterFleet _fleet = null!;

    public async Task InitializeAsync() =>
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-queue", Model = TestGateway.Model }, maxConcurrency: 1);

    public async Task DisposeAsync() => await _fleet.DisposeAsync();

    [Fact]
    public async Task AStreamQueuedOnB_BehindRequestsQueuedOnA_CountsThemInItsPosition()
    {
        var replicas = await _fleet.StartMembersAsync(["replica-a", "replica-b"]);
        var (a, b) = (replicas[0], replicas[1]);

        using var httpA = new HttpClient { BaseAddress = a.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var httpB = new HttpClient { BaseAddress = b.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        _fleet.Worker.Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(50);

        // A: the slot held by a ~10 s stream, then two waiters.
        using var holder = await httpA.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 200)), HttpCompletionOption.ResponseHeadersRead, stop.Token);
        Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
        var queuedOnA = Enumerable.Range(0, 2).Select(_ => httpA.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 1)), stop.Token)).ToList();
        await TestGateway.WaitUntilAsync(async () => await ModelAsync(a) is { ValueKind: JsonValueKind.Object } m && m.GetProperty("waiting").GetInt32() == 2, "two requests wait on A");

        // B: a request ahead of the opted-in stream, admitted to wait for the worker's slot
        // fleet-wide or queued in B (whichever B's view of the worker decides): B's own part.
        var waitingForSlot = httpB.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 1)), stop.Token);
        await TestGateway.WaitUntilAsync(async () => await ModelAsync(b) is { ValueKind: JsonValueKind.Object } m && m.GetProperty("in_use").GetInt32() + m.GetProperty("waiting").GetInt32() == 1, "B's first request is in");
        var before = await ModelAsync(b);
        var expected = before.GetProperty("waiting").GetInt32() + 1 + 2; // B's waiters ahead, itself, A's two

        var opted = TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 1));
        opted.Headers.Add("x-gateway-queue-updates", "true");
        using var queued = await httpB.SendAsync(opted, HttpCompletionOption.ResponseHeadersRead, stop.Token);
        Assert.Equal(HttpStatusCode.OK, queued.StatusCode);
        using var reader = new StreamReader(await queued.Content.ReadAsStreamAsync(stop.Token));

        // Positions are written when they change (looked at every 100 ms) and at least every second:
        // the first may come before B's flush read A's queue; a later one counts A's two waiters.
        var positions = new List<int>();
        for (var i = 0; i < 20 && !positions.Contains(expected); i++) // bounded: about a comment a second
        {
            var line = await reader.ReadLineAsync(stop.Token);
            Assert.NotNull(line);
            if (CommentPattern().Match(line) is { Success: true } match)
            {
                positions.Add(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
            }
        }

        Assert.True(positions.Contains(expected), $"positions heard: {string.Join(", ", positions)}; expected {expected}");
        Assert.All(positions, p => Assert.InRange(p, 1, expected));

        // A granted its holder, B what it admitted: the fleet's rate over 10 s counts both.
        var rateB = (await ModelAsync(b)).GetProperty("grant_rate").GetDouble();
        var ownB = 0.1 * before.GetProperty("in_use").GetInt32();
        Assert.True(rateB >= ownB + 0.1 - 1e-9, $"B's grant_rate {rateB} is B's own ({ownB}) only");

        holder.Dispose(); // frees the worker: everyone is served
        await Task.WhenAll(queuedOnA.Append(waitingForSlot)).WaitAsync(stop.Token);
        _fleet.Worker.Options.Faults.InterTokenDelay = TimeSpan.Zero;
    }

    // The model's pool on the replica; default (Undefined) until its first request made it.
    private static async Task<JsonElement> ModelAsync(GatewayProcess replica)
    {
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues"));
        var models = queues.RootElement.GetProperty("models");
        return models.GetArrayLength() == 0 ? default : models[0].Clone();
    }

    [GeneratedRegex(@"^: queued position=(\d+) eta_ms=(\d+)$")]
    private static partial Regex CommentPattern();
}
