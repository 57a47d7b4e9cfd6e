using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
using AotProxy.Admin.Contracts;
using AotProxy.Http;
using AotProxy.Ledger;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Admin.Dashboard;

// GET /api/events: the live console's state as Server-Sent Events. One loop, started with the
// admin plane, samples the workers every second (WorkerHistory) and, while a stream is open,
// builds the state once per tick or change, serializes it once and hands the same bytes to every
// stream. A change (AdminChanges) is sent after 50 ms, so that a burst of them (a reload that
// moves every breaker) makes one message. At most MaxStreams streams: each holds a connection
// and a little memory, and the console is for a few operators, not a fan-out service.
internal sealed class DashboardFeed : IAsyncDisposable
{
    public const int MaxStreams = 16;

    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(50);
    private static readonly JsonWriterOptions Compact = new() { Indented = false };

    private readonly AdminReports _reports;
    private readonly RequestTelemetry _requests;
    private readonly RecentErrors _errors;
    private readonly AdminChanges _changes;
    private readonly LedgerUsageCache? _usage;
    private readonly Func<KeyReport[]> _keys;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly WorkerHistory _history;
    private readonly Lock _lock = new();
    private readonly List<Channel<byte[]>> _streams = [];
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024); // the loop's only
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _seq;
    private bool _closed;

    public DashboardFeed(AdminReports reports, RequestTelemetry requests, RecentErrors errors, AdminChanges changes, Func<KeyReport[]> keys, LedgerWriter? ledger, TimeProvider time, ILogger logger, WorkerHistory? history = null)
    {
        _history = history ?? new WorkerHistory();
        _reports = reports;
        _requests = requests;
        _errors = errors;
        _changes = changes;
        _keys = keys;
        _usage = ledger is null ? null : new LedgerUsageCache(ledger, time);
        _time = time;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    // Streams open now.
    public int Streams
    {
        get
        {
            lock (_lock)
            {
                return _streams.Count;
            }
        }
    }

    public async Task StreamAsync(HttpContext context)
    {
        // Four messages of slack: a client that reads slower than that loses the oldest, never
        // holds the loop or the other streams.
        var channel = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(4) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        lock (_lock)
        {
            if (_closed || _streams.Count >= MaxStreams)
            {
                channel = null;
            }
            else
            {
                _streams.Add(channel);
            }
        }

        if (channel is null)
        {
            await OpenAiError.WriteAsync(context, 503, "server_error", "too_many_event_streams", $"{MaxStreams} event streams are open already, the most the admin plane serves; close a dashboard and retry.").ConfigureAwait(false);
            return;
        }

        var aborted = context.RequestAborted;
        try
        {
            var response = context.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            response.Headers["x-accel-buffering"] = "no"; // a proxy in front must not hold the stream back
            // Built on the thread pool: with every sample kept it takes milliseconds, and the admin
            // request came in on an epoll thread the data plane's sockets share (Gateway/EventLoop.cs).
            var connect = await Task.Run(() => Message(Build("connect", all: true)), aborted).ConfigureAwait(false);
            await response.Body.WriteAsync(connect, aborted).ConfigureAwait(false);
            await response.Body.FlushAsync(aborted).ConfigureAwait(false);
            await foreach (var message in channel.Reader.ReadAllAsync(aborted).ConfigureAwait(false))
            {
                await response.Body.WriteAsync(message, aborted).ConfigureAwait(false);
                await response.Body.FlushAsync(aborted).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // the client went away: its slot is freed below
        }
        catch (IOException)
        {
            // the connection broke mid-write
        }
        finally
        {
            lock (_lock)
            {
                _streams.Remove(channel);
            }
        }
    }

    // The state now; all: with every sample kept.
    // workers: the reports the tick has just sampled, when it has (read once per tick).
    internal DashboardEvent Build(string reason, bool all, WorkerReport[]? workers = null)
    {
        var status = _reports.Status();
        var tenants = _reports.Tenants();
        return new DashboardEvent(
            Interlocked.Increment(ref _seq),
            reason,
            _time.GetUtcNow(),
            _requests.Total,
            status.Totals.ActiveRequests,
            Streams,
            status,
            workers ?? _reports.Workers(),
            _history.Report(all),
            _reports.Breakers(),
            _reports.Queues(),
            _reports.FairShare(tenants),
            tenants,
            _keys(),
            _usage?.Latest,
            _errors.Snapshot(),
            _reports.Cluster());
    }

    // `event: state`, the JSON on one data line, a blank line.
    internal static byte[] Message(DashboardEvent state) => Message(state, new ArrayBufferWriter<byte>(64 * 1024));

    // The loop's messages reuse one buffer (a tick with 1,000 tenants is ~800 KB: growing a new
    // buffer to that each second would copy it several times over); the copy out is the message.
    internal byte[] Publishing(DashboardEvent state) => Message(state, _buffer);

    private static byte[] Message(DashboardEvent state, ArrayBufferWriter<byte> buffer)
    {
        buffer.ResetWrittenCount();
        buffer.Write("event: state\ndata: "u8);
        using (var json = new Utf8JsonWriter(buffer, Compact))
        {
            JsonSerializer.Serialize(json, state, AdminJsonContext.Default.DashboardEvent);
        }

        buffer.Write("\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private async Task RunAsync()
    {
        var stop = _stop.Token;
        var next = _time.GetTimestamp();
        // Read before the state of the message that answers it is built, never after: a pulse
        // between that build and a later read would complete a task nobody waits on, and the
        // change would reach the page only as the next tick (a drain pulsed while a tick was being
        // published, on a loaded box where publishing takes milliseconds, never came as a change).
        var changed = _changes.Next;
        try
        {
            while (true)
            {
                var wait = _time.GetElapsedTime(_time.GetTimestamp(), next);
                var tick = Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, _time, stop);
                if (await Task.WhenAny(changed, tick).ConfigureAwait(false) == changed)
                {
                    await Task.Delay(Coalesce, _time, stop).ConfigureAwait(false);
                    changed = _changes.Next; // the pulses of the last 50 ms are in this message; later ones make the next
                    Publish("change", sample: false);
                    continue;
                }

                await tick.ConfigureAwait(false); // throws once stopped
                next += (long)(Tick.TotalSeconds * _time.TimestampFrequency);
                if (_time.GetTimestamp() > next)
                {
                    next = _time.GetTimestamp(); // fell behind (a paused process): no burst of ticks
                }

                // The ledger's scans only while someone watches: over a large ledger they cost
                // seconds of CPU (AdminIsolationTests' 500k rows: ~0.5 s each).
                if (Streams > 0)
                {
                    _usage?.Refresh(stop);
                }

                Publish("tick", sample: true);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    // sample: a tick, which adds the workers' second to their history first.
    private void Publish(string reason, bool sample)
    {
        try
        {
            WorkerReport[]? workers = null;
            if (sample)
            {
                workers = _reports.Workers();
                _history.Sample(_time.GetUtcNow().ToUnixTimeSeconds(), workers);
            }

            Channel<byte[]>[] streams;
            lock (_lock)
            {
                if (_streams.Count == 0)
                {
                    return;
                }

                streams = [.. _streams];
            }

            var message = Publishing(Build(reason, all: false, workers));
            foreach (var stream in streams)
            {
                stream.Writer.TryWrite(message);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            AdminLog.DashboardStateFailed(_logger, ex);
        }
    }

    // Shutdown: every stream ends now, so that none holds the admin listener's stop for its grace.
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            foreach (var stream in _streams)
            {
                stream.Writer.TryComplete();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
