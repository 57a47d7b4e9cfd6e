using System.Diagnostics;
using AotProxy.Tracing;
using OpenTelemetry;
using Prometheus;

namespace AotProxy.Tests.Tracing;

// The export queue: a quiet gateway's spans go out together after the linger, not one export
// call per span on the proxy's core; shutdown sends what is queued at once.
public sealed class SpanQueueTests
{
    [Fact]
    public async Task SpansEndedCloseTogether_GoOutInOneExportCall_AndNoneIsLost()
    {
        var exporter = new CountingExporter();
        using var queue = new SpanQueue(exporter, capacity: 64, new TraceTelemetry(new CollectorRegistry()));

        // Five requests' spans, about 10 ms apart (a quiet gateway): each would be an export call
        // of its own without the linger; with it, one, plus one per 200 ms linger that a loaded
        // machine stretches the five over (measured: a busy CI machine took 3).
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 5; i++)
        {
            queue.OnEnd(Span());
            await Task.Delay(10);
        }

        var lingers = (int)(clock.ElapsedMilliseconds / 200);
        await exporter.WaitForAsync(5);
        Assert.InRange(exporter.Calls, 1, Math.Min(2 + lingers, 4));
    }

    [Fact]
    public void Shutdown_ExportsWhatIsQueued_WithoutWaitingForTheLinger()
    {
        var exporter = new CountingExporter();
        using var queue = new SpanQueue(exporter, capacity: 64, new TraceTelemetry(new CollectorRegistry()));
        queue.OnEnd(Span());
        queue.OnEnd(Span());

        Assert.True(queue.Shutdown(10_000));
        Assert.Equal(2, exporter.Spans);
    }

    private static Activity Span()
    {
        var span = new Activity("s") { ActivityTraceFlags = ActivityTraceFlags.Recorded };
        span.Start();
        span.Stop();
        return span;
    }

    private sealed class CountingExporter : BaseExporter<Activity>
    {
        private readonly TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;
        private int _spans;

        public int Calls => Volatile.Read(ref _calls);

        public int Spans => Volatile.Read(ref _spans);

        public override ExportResult Export(in Batch<Activity> batch)
        {
            Interlocked.Increment(ref _calls);
            Interlocked.Add(ref _spans, (int)batch.Count);
            _changed.TrySetResult();
            return ExportResult.Success;
        }

        public async Task WaitForAsync(int spans)
        {
            var deadline = Stopwatch.StartNew();
            await _changed.Task.WaitAsync(TimeSpan.FromSeconds(10));
            while (Spans < spans && deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(10);
            }

            Assert.Equal(spans, Spans);
        }
    }
}
