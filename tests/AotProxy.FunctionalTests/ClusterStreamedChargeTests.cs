using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using StackExchange.Redis;

namespace AotProxy.FunctionalTests;

// Issue 20, "charge as tokens stream", fleet-wide, through the real executable (the AOT binary in
// CI) on a real redis-server: a stream's chunks reach the tenant's fleet counter
// (`aotproxy:vtc:{model}`, micro-tokens per weight) with the replica's flushes while it still
// streams, and once settled the counter is exactly input_weight x prompt + output_weight x
// completion of the usage the client got.
public sealed class ClusterStreamedChargeTests : IAsyncLifetime
{
    private const int MaxTokens = 40;
    private const string Content = "count the tokens as they stream";

    private ClusterFleet _fleet = null!;

    // 20 tokens a second: a 40-token stream runs ~2 s, against the replica's 50 ms flushes.
    public async Task InitializeAsync() =>
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-stream", Model = TestGateway.Model, DecodeTokensPerSecond = 20 }, maxConcurrency: 2);

    public async Task DisposeAsync() => await _fleet.DisposeAsync();

    [Fact]
    public async Task Stream_MovesTheFleetCounterWhileItStreams_AndSettlesItToExactlyTheWeightedUsage()
    {
        var replica = await _fleet.StartReplicaAsync("one");
        await ClusterFleet.WaitForMembersAsync(replica, ["one"]);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(_fleet.Redis.Url.Replace("redis://", string.Empty, StringComparison.Ordinal));
        var db = redis.GetDatabase();
        async Task<long> FleetCounter() => (long)await db.HashGetAsync($"aotproxy:vtc:{TestGateway.Model}", "acme");
        using var http = new HttpClient { BaseAddress = replica.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };

        using var response = await http.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: MaxTokens, content: Content, streamOptions: """{"include_usage":true}""")),
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var events = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var lines = new List<string>();
        async Task ReadEventsAsync(int count)
        {
            while (lines.Count(l => l.StartsWith("data: {", StringComparison.Ordinal)) < count)
            {
                lines.Add(await events.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("the stream ended early"));
            }
        }

        // The grant charged the prompt estimate (4 bytes of text a token, input_weight 1); the
        // counter grows past it by output_weight 2 per chunk while the request is still in flight
        // (read after the counter: the growth is not the settlement).
        await ReadEventsAsync(4);
        var grant = Micro((Content.Length + 3) / 4);
        var mid = 0L;
        await TestGateway.WaitUntilAsync(async () => (mid = await FleetCounter()) > grant, "the fleet counter grew past the grant's charge");
        using (var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues")))
        {
            Assert.Equal(1, queues.RootElement.GetProperty("models")[0].GetProperty("in_use").GetInt32());
        }

        Assert.True(mid < Micro((Content.Length + 3) / 4 + (2 * MaxTokens)), $"mid-stream counter {mid} is the whole stream's already");

        while (await events.ReadLineAsync(timeout.Token) is { } line)
        {
            lines.Add(line);
        }

        using var last = JsonDocument.Parse(lines.Last(l => l.Contains("\"usage\":{", StringComparison.Ordinal))["data: ".Length..]);
        var usage = last.RootElement.GetProperty("usage");
        var cost = Micro(usage.GetProperty("prompt_tokens").GetInt64() + (2 * usage.GetProperty("completion_tokens").GetInt64()));
        await TestGateway.WaitUntilAsync(async () => await FleetCounter() == cost, $"the fleet counter is the usage's cost, {cost}");
    }

    private static long Micro(long weightedTokens) => weightedTokens * 1_000_000;
}
