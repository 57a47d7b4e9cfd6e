using System.Diagnostics;
using System.Threading.Channels;
using OpenTelemetry;

namespace AotProxy.Tracing;

// The OTel SDK's batch processor, with the drops counted: a request's thread only offers its
// ended span to a bounded queue (full: the span is dropped and counted, the request never waits),
// and one thread of its own hands what has queued to the exporter, up to MaxBatch spans a call.
// It lingers up to Linger after the first span, unless a full batch is there first, so that a
// quiet gateway makes one export call per Linger instead of one per request on the proxy's core
// (perf/RESULTS.md: +85-98 us on a lone stream's headers without it). (The SDK's
// BatchActivityExportProcessor counts its drops internally only.)
internal sealed class SpanQueue : BaseExportProcessor<Activity>
{
    // The SDK's default batch size: one OTLP request of a few hundred KB at most.
    private const int MaxBatch = 512;

    private static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan LingerStep = TimeSpan.FromMilliseconds(5);

    private readonly Channel<Activity> _queue;
    private readonly TraceTelemetry _telemetry;
    private readonly Thread _thread;
    private volatile bool _closing;

    public SpanQueue(BaseExporter<Activity> exporter, int capacity, TraceTelemetry telemetry)
        : base(exporter)
    {
        _telemetry = telemetry;
        _queue = Channel.CreateBounded<Activity>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true },
            _ => telemetry.CountQueueFull());
        // A thread, not the pool: the exporter's HTTP call blocks for as long as the receiver takes.
        _thread = new Thread(Export) { IsBackground = true, Name = "OTLP span export" };
        _thread.Start();
    }

    protected override void OnExport(Activity data)
    {
        if (data.Recorded)
        {
            _queue.Writer.TryWrite(data);
        }
    }

    protected override bool OnShutdown(int timeoutMilliseconds)
    {
        _closing = true;
        _queue.Writer.TryComplete();
        var drained = _thread.Join(timeoutMilliseconds < 0 ? Timeout.Infinite : timeoutMilliseconds);
        return drained && base.OnShutdown(timeoutMilliseconds);
    }

    private void Export()
    {
        var batch = new Activity[MaxBatch];
        var reader = _queue.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            // Until a full batch, the linger's end, or shutdown (the writer completed: drain now).
            var lingered = Stopwatch.StartNew();
            while (reader.Count < MaxBatch && lingered.Elapsed < Linger && !_closing)
            {
                Thread.Sleep(LingerStep);
            }

            var count = 0;
            while (count < MaxBatch && reader.TryRead(out var span))
            {
                batch[count++] = span;
            }

            ExportResult result;
            try
            {
                result = exporter.Export(new Batch<Activity>(batch, count));
            }
            catch (Exception)
            {
                // The exporter reports failures as a result; anything else must not end the thread.
                result = ExportResult.Failure;
            }

            if (result == ExportResult.Success)
            {
                _telemetry.CountExported(count);
            }
            else
            {
                _telemetry.CountExportFailed(count);
            }

            Array.Clear(batch, 0, count);
        }
    }
}
