using System.Text;
using AotProxy.Admission;
using AotProxy.Tests.Ledger;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Forwarding;

// Per-class protection counts each failed upstream attempt as a fleet error, a retried one too: in
// process, the data plane as GatewayHost wires it over two loopback workers, "w" failing every
// request with 500 and "good" answering. With a retry, every request whose first attempt went to
// "w" is made good on "good" and no client sees an error, but the failing worker is not invisible:
// protection sheds the loose class as it does without a retry, when half the clients get the 500.
public sealed class ProtectionObservationTests : IDisposable
{
    private const string Key = "sk-test-protect";
    private const string Model = "m";

    private readonly LedgerFile _file = new();

    public void Dispose() => _file.Dispose();

    [Theory]
    [InlineData(2, false)]
    [InlineData(1, true)]
    public async Task AFailedAttempt_IsAnErrorForProtection_EvenWhenARetryMadeItGood(int maxAttempts, bool clientsSeeErrors)
    {
        await using var failing = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            const string error = """{"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}}""";
            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {error.Length}\r\n\r\n{error}", ct);
            return true;
        });
        var json = Fixtures.Text("openai/chat_nonstream.json");
        await using var good = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
            return true;
        });

        // "default" (acme's class) is the loose one; "enterprise" tolerates 1% errors. A 1 s window
        // judged every 100 ms from 5 requests; breakers that never open, so "w" keeps its share.
        var snapshot = DataPlane.Snapshot(_file.Path, failing.Url("/").ToString(), Key, Model, $"""

            [[workers]]
            name = "good"
            url = "{good.Url("/")}"
            models = ["{Model}"]
            max_concurrency = 1

            [circuit_breaker]
            failure_threshold = 1000000

            [retries]
            max_attempts = {maxAttempts}
            budget_ratio = 1.0
            backoff_base = "1ms"
            backoff_max = "1ms"
            {ErrorProtectionToml.For("1s", 0.01)}
            """);
        await using var plane = DataPlane.Start(snapshot, Random.Shared, TimeProvider.System);

        // Requests until protection sheds (then every later request of acme's is shed and adds no
        // sample), or a judged window holds enough of them, at least 5 of whose first attempts went
        // to "w" (bounded in count and time; paced under acme's rpm of 100). The pool's admission,
        // and its protection, exist from the first request on.
        var statuses = new List<int>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        ClassProtection Protection() => Assert.Single(plane.Admissions.Models).Protection;
        while (statuses.Count == 0 || (Protection().State.Shed == 0 && (double.IsNaN(Protection().State.ErrorRate) || failing.Requests < 5)))
        {
            Assert.True(statuses.Count < 95 && DateTime.UtcNow < deadline, $"no judged window after {statuses.Count} requests");
            var context = ChatContext.Create(Key, $"r{statuses.Count}", Model);
            await plane.Handler.HandleAsync(context);
            statuses.Add(context.Response.StatusCode);
            await Task.Delay(20);
        }

        var protection = Protection();
        var state = protection.State;
        Assert.True(failing.Requests >= 1, $"first attempts on the failing worker: {failing.Requests}");
        Assert.InRange(state.ErrorRate, 0.02, 1.0);
        Assert.Equal(1, state.Shed);
        Assert.True(protection.Sheds("default", out _, out _));
        if (clientsSeeErrors)
        {
            Assert.Contains(500, statuses);
        }
        else
        {
            // Every failure was made good by a retry: no client saw one (the last may be shed, 503).
            Assert.DoesNotContain(500, statuses);
            Assert.Contains(200, statuses);
        }
    }

    // Each upstream attempt is one sample, counted once. Two workers with one slot each: the first
    // request's attempt fails (500) after the second request took the other worker's only slot, so
    // its retry finds no worker and the failed attempt is the request's end. The workers saw two
    // attempts, one failed: protection holds two samples, one failed (not the failure twice, once
    // before the retry and again as the request's end).
    [Fact]
    public async Task EachAttempt_IsCountedOnce_ARetriedFailureThatFoundNoWorkerToo()
    {
        var attempts = 0;
        var firstIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failNow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answerNow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var json = Fixtures.Text("openai/chat_nonstream.json");
        async Task<bool> AnswerAsync(LoopbackRequest _, Stream stream, CancellationToken ct)
        {
            if (Interlocked.Increment(ref attempts) == 1)
            {
                firstIn.SetResult();
                await failNow.Task.WaitAsync(ct);
                const string error = """{"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}}""";
                await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {error.Length}\r\n\r\n{error}", ct);
            }
            else
            {
                secondIn.TrySetResult();
                await answerNow.Task.WaitAsync(ct);
                await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
            }

            return true;
        }

        await using var first = LoopbackTcpServer.KeepAlive(AnswerAsync);
        await using var second = LoopbackTcpServer.KeepAlive(AnswerAsync);
        // A 10 min window: every sample of the test stays in it.
        var snapshot = DataPlane.Snapshot(_file.Path, first.Url("/").ToString(), Key, Model, $"""

            [[workers]]
            name = "second"
            url = "{second.Url("/")}"
            models = ["{Model}"]
            max_concurrency = 1

            [circuit_breaker]
            failure_threshold = 1000000

            [retries]
            max_attempts = 2
            budget_ratio = 1.0
            backoff_base = "1ms"
            backoff_max = "1ms"
            {ErrorProtectionToml.For("10m", 0.01)}
            """);
        await using var plane = DataPlane.Start(snapshot, Random.Shared, TimeProvider.System);

        var failing = ChatContext.Create(Key, "fails", Model);
        var failed = plane.Handler.HandleAsync(failing);
        await firstIn.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var answered = ChatContext.Create(Key, "answered", Model);
        var answering = plane.Handler.HandleAsync(answered);
        await secondIn.Task.WaitAsync(TimeSpan.FromSeconds(10)); // the other worker's only slot is taken
        failNow.SetResult();
        await failed;
        answerNow.SetResult();
        await answering;

        Assert.Equal(2, Volatile.Read(ref attempts));
        Assert.InRange(failing.Response.StatusCode, 500, 599);
        Assert.Equal(200, answered.Response.StatusCode);
        var state = Assert.Single(plane.Admissions.Models).Protection.State;
        var now = TimeProvider.System.GetTimestamp() / state.BucketTicks;
        var sample = state.Classes[state.IndexOf("default")].Outcomes.Sum(now - FleetOutcomes.Buckets + 1, now);
        Assert.Equal((Failed: 1L, Requests: 2L), (sample.Failed, sample.Requests));
    }

    // An admitted stream awaits its first token, for protection to judge by its age, from its
    // admission until its first event reached the client, not to its end; then the set is empty.
    [Fact]
    public async Task AnAdmittedStream_AwaitsItsFirstToken_UntilItsFirstEventReachedTheClient()
    {
        var firstEvent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var rest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const string chunk = """data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}""" + "\n\n";
        const string done = "data: [DONE]\n\n";
        await using var worker = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await firstEvent.Task.WaitAsync(ct);
            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{chunk.Length:x}\r\n{chunk}\r\n", ct);
            await stream.FlushAsync(ct);
            await rest.Task.WaitAsync(ct);
            await LoopbackTcpServer.WriteAsync(stream, $"{done.Length:x}\r\n{done}\r\n0\r\n\r\n", ct);
            return true;
        });
        var snapshot = DataPlane.Snapshot(_file.Path, worker.Url("/").ToString(), Key, Model, ErrorProtectionToml.For("1s", 0.01));
        await using var plane = DataPlane.Start(snapshot, Random.Shared, TimeProvider.System);

        var context = ChatContext.Create(Key, "s1", Model, stream: true);
        var handled = plane.Handler.HandleAsync(context);
        long Oldest() => plane.Admissions.Models.SingleOrDefault()?.Protection.Pending("default")?.Oldest() ?? 0;
        await UntilAsync(() => Oldest() != 0, "the admitted stream awaits its first token");
        firstEvent.SetResult();
        await UntilAsync(() => Oldest() == 0, "its first event reached the client");
        Assert.False(handled.IsCompleted, "the stream is still open");
        rest.SetResult();
        await handled;
        Assert.Equal(200, context.Response.StatusCode);
        Assert.Equal(0, Oldest());
    }

    // Polls the condition every 10 ms, at most 10 s (1,000 times).
    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        for (var i = 0; !condition(); i++)
        {
            Assert.True(i < 1000, $"not within 10 s: {what}");
            await Task.Delay(10);
        }
    }
}
