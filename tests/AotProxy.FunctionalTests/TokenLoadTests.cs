using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 19's token load through real sockets: a stream's predicted uncached prompt tokens count in
// its worker's prefill_backlog_tokens from the send to its first byte, then the request in
// `decoding` until it ends. Whatever the ending, both return to 0 (a leak would make p2c_kv avoid
// the worker for good). Each test first sees the counter move, so a 0 at the end means something.
public class TokenLoadTests
{
    private static readonly string LongPrompt = new('x', 4000); // ~1,000 tokens

    [Fact]
    public async Task AStream_CountsInTheBacklogThenInDecoding_AndLeavesNothing()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        gateway.Workers[0].Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(100);

        using var response = await gateway.Client.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 30, content: LongPrompt)),
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            Assert.StartsWith("data: ", await reader.ReadLineAsync(bound.Token), StringComparison.Ordinal);
        }

        var during = await StatsAsync(gateway, "sim-0");
        Assert.Equal(1, during.GetProperty("decoding").GetInt32());
        Assert.Equal(0, during.GetProperty("prefill_backlog_tokens").GetInt64());

        await reader.ReadToEndAsync();
        await WaitForNoLoadAsync(gateway);
    }

    [Fact]
    public async Task AClientAbortBeforeTheFirstByte_ReturnsTheBacklog()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        gateway.Workers[0].Options.Faults.Hang = true;

        using var abort = new CancellationTokenSource();
        var sending = gateway.Client.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, content: LongPrompt)),
            HttpCompletionOption.ResponseHeadersRead,
            abort.Token);
        await TestGateway.WaitUntilAsync(async () => (await StatsAsync(gateway, "sim-0")).GetProperty("prefill_backlog_tokens").GetInt64() > 900, "the hung request is in the backlog");

        await abort.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);
        await WaitForNoLoadAsync(gateway);
    }

    [Fact]
    public async Task AClientAbortMidStream_ReturnsTheDecodingCount()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        gateway.Workers[0].Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(200);

        var response = await gateway.Client.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 60, content: LongPrompt)),
            HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            Assert.StartsWith("data: ", await reader.ReadLineAsync(bound.Token), StringComparison.Ordinal);
        }

        Assert.Equal(1, (await StatsAsync(gateway, "sim-0")).GetProperty("decoding").GetInt32());
        reader.Dispose();
        response.Dispose();
        await WaitForNoLoadAsync(gateway);
    }

    // sim-0 fails every attempt (a 500, then a stream reset before its first token); each is retried
    // on sim-1, which answers. Neither worker keeps anything.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnUpstreamFailureRetriedElsewhere_LeavesNothingOnEitherWorker(bool reset)
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2, extraToml: """

            [circuit_breaker]
            failure_threshold = 100
            """);
        var failing = gateway.Workers[0].Options.Faults;
        if (reset)
        {
            failing.ResetAfterTokens = 0;
        }
        else
        {
            failing.Http500Rate = 1;
        }

        for (var i = 0; i < 4; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, content: LongPrompt)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.EndsWith("data: [DONE]\n\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.True(gateway.Workers[0].Stats.RequestsTotal >= 2, "sim-0 was never tried");
        await WaitForNoLoadAsync(gateway);
    }

    private static async Task<JsonElement> StatsAsync(TestGateway gateway, string worker) =>
        Fleet.Named((await Fleet.GetJsonAsync(gateway, "/api/routing/stats")).GetProperty("workers"), worker);

    private static async Task WaitForNoLoadAsync(TestGateway gateway)
    {
        await Fleet.AssertNothingInFlightAsync(gateway);
        await TestGateway.WaitUntilAsync(
            () => Task.FromResult(gateway.Host.State.Current.Workers.Workers.All(w => w.PrefillBacklog == 0 && w.Prefilling == 0 && w.Decoding == 0)),
            "every worker's token load is back to 0");
    }
}
