using System.Text;
using System.Text.RegularExpressions;
using AotProxy.Admission;
using Microsoft.AspNetCore.Http;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Admission;

public sealed partial class QueueUpdatesTests
{
    [Theory]
    [InlineData(1, 0L, ": queued position=1 eta_ms=0\n\n")]
    [InlineData(12, 3400L, ": queued position=12 eta_ms=3400\n\n")]
    [InlineData(int.MaxValue, long.MaxValue, ": queued position=2147483647 eta_ms=9223372036854775807\n\n")]
    public void Format_WritesOneSseCommentLine(int position, long etaMs, string expected)
    {
        var buffer = new byte[128];

        var length = QueueUpdates.Format(buffer, position, etaMs);

        Assert.Equal(expected, Encoding.ASCII.GetString(buffer, 0, length));
    }

    [Theory]
    [InlineData(true, "true", true)]
    [InlineData(true, "TRUE", true)]
    [InlineData(true, "false", false)]
    [InlineData(true, null, false)]
    [InlineData(false, "true", false)] // a JSON answer cannot carry comments
    public void Requested_OnlyForAStreamThatSaysTrue(bool stream, string? header, bool expected)
    {
        var context = new DefaultHttpContext();
        if (header is not null)
        {
            context.Request.Headers[QueueUpdates.Header] = header;
        }

        Assert.Equal(expected, QueueUpdates.Requested(context.Request, stream));
    }

    [Fact]
    public async Task AQueuedRequest_HearsItsPlaceAtOnce_AgainAfterASecond_AndWhenItMoves_UntilGranted()
    {
        var clock = new TimerClock();
        var test = new AdmissionHarness(capacity: 1, time: clock);
        var cls = Class();
        var tenant = Tenant("a");
        var held = await test.Admit(tenant, cls);
        var ahead = test.Admit(tenant, cls);
        var body = new RecordingStream();
        var context = new DefaultHttpContext();
        context.Response.Body = body;
        var updates = new QueueUpdates().For(context);

        var pending = test.Model.AdmitAsync(new AdmissionRequest(tenant, cls, 0, 100, Updates: updates), CancellationToken.None).AsTask();

        // Second in line; one grant in the last 10 s: 0.1 grants/s, so 20 s.
        Assert.Equal([(2, 20_000L)], await CommentsAsync(body, 1));
        Assert.Equal("text/event-stream", context.Response.ContentType);
        var since = clock.GetTimestamp();
        var second = await AdvanceUntilAsync(clock, body, 2);
        Assert.Equal(2, second[1].Position);
        Assert.True(clock.GetElapsedTime(since) >= QueueUpdates.Interval); // nothing moved: not before a second

        held.Lease.Release(null);
        var granted = await Settle(ahead);
        var moved = await AdvanceUntilAsync(clock, body, second.Count + 1);
        Assert.Equal(1, moved[^1].Position);
        Assert.True(clock.GetElapsedTime(since) < QueueUpdates.Interval * 2); // at its next look, not at the next second

        granted.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(pending)).Decision);
        Assert.Equal(0, clock.ArmedWithin(QueueUpdates.Poll)); // the wait ended, and its last poll's timer with it (the waiters' own, due at max_queue_wait, stay armed by design)
    }

    // Moves the clock to each poll the waiter parks on until `count` comments were written: a
    // comment so comes at exactly the poll that wrote it, however late the host runs the waiter.
    private static async Task<List<(int Position, long EtaMs)>> AdvanceUntilAsync(TimerClock clock, RecordingStream body, int count)
    {
        Assert.True(await clock.StepUntilAsync(() => Comments(body).Count >= count, QueueUpdates.Poll), $"fewer than {count} comments: {body.Text}");
        return Comments(body);
    }

    private static async Task<List<(int Position, long EtaMs)>> CommentsAsync(RecordingStream body, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Comments(body).Count < count)
        {
            Assert.True(DateTime.UtcNow < deadline, body.Text);
            await Task.Delay(5);
        }

        return Comments(body);
    }

    private static List<(int Position, long EtaMs)> Comments(RecordingStream body)
    {
        var text = body.Text;
        Assert.Matches(WholePattern(), text);
        return [.. CommentPattern().Matches(text).Select(m => (int.Parse(m.Groups[1].Value), long.Parse(m.Groups[2].Value)))];
    }

    [GeneratedRegex(@": queued position=(\d+) eta_ms=(\d+)\n\n")]
    private static partial Regex CommentPattern();

    [GeneratedRegex(@"^(: queued position=\d+ eta_ms=\d+\n\n)*$")]
    private static partial Regex WholePattern();
}
