using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using AotProxy.Accounting;
using AotProxy.Routing;
using AotProxy.Upstream;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Forwarding;

// Sends one request to one worker over a pooled HTTP/1.1 connection and streams the answer back
// to the client through pipes. SSE: each whole event goes out as soon as it has arrived (flush
// per read), and the usage-only chunk the gateway itself asked for is dropped. JSON: bytes go
// out as they arrive while an incremental reader picks `usage` out of them.
internal sealed class Forwarder(TimeProvider time)
{
    // Room for the request line and headers in front of the body; a head that does not fit
    // (Kestrel allows 32 KiB of client headers) is written again into a larger buffer.
    private const int HeadRoom = 2048;

    private enum Attempt : byte
    {
        Done,
        RetryOnNewConnection, // a reused connection failed before any response byte
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ForwardResult> ForwardAsync(
        HttpContext context,
        WorkerState worker,
        ReadOnlyMemory<byte> body,
        string requestId,
        bool stripUsage,
        TimeSpan activityTimeout,
        TimeSpan connectTimeout)
    {
        var clientAborted = context.RequestAborted;
        var pool = worker.Connections;
        var request = BuildRequest(context, pool.Endpoint, worker.Authorization, body.Span, requestId, out var length);
        try
        {
            var exchange = new Exchange(context, request.AsMemory(0, length), stripUsage, activityTimeout);
            for (var attempt = 0; ; attempt++)
            {
                UpstreamConnection connection;
                try
                {
                    connection = await pool.RentAsync(connectTimeout, clientAborted).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
                {
                    return new ForwardResult(ForwarderError.ClientAborted, 0, null, null);
                }
                catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or AuthenticationException)
                {
                    return new ForwardResult(ForwarderError.UpstreamConnect, 0, null, null);
                }

                var (next, result) = await RunAsync(exchange, connection, pool).ConfigureAwait(false);
                if (next == Attempt.Done || attempt == 1)
                {
                    return result;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(request);
        }
    }

    private static byte[] BuildRequest(HttpContext context, UpstreamEndpoint endpoint, string? authorization, ReadOnlySpan<byte> body, string requestId, out int length)
    {
        var incoming = context.Request;
        var path = incoming.Path.Value ?? "/";
        var query = incoming.QueryString.Value ?? string.Empty;
        for (var room = HeadRoom; ; room *= 32)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(room + body.Length);
            var head = RequestHeadWriter.Write(buffer.AsSpan(0, buffer.Length - body.Length), incoming.Method, endpoint, path, query, incoming.Headers, body.Length, requestId, authorization);
            if (head >= 0)
            {
                body.CopyTo(buffer.AsSpan(head));
                length = head + body.Length;
                return buffer;
            }

            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // One try on one connection. The connection goes back to the pool only when its response
    // was read to the end and the worker keeps it open.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(Attempt, ForwardResult)> RunAsync(Exchange exchange, UpstreamConnection connection, UpstreamPool pool)
    {
        var context = exchange.Context;
        var clientAborted = context.RequestAborted;
        var activity = connection.Activity;
        var reusable = false;
        var registration = clientAborted.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), activity);
        try
        {
            activity.CancelAfter(exchange.ActivityTimeout);
            var started = time.GetTimestamp();
            var head = connection.Head;
            HeadOutcome outcome;
            try
            {
                await connection.SendAsync(exchange.Request, activity.Token).ConfigureAwait(false);
                outcome = await ReadHeadAsync(connection.Reader, head, activity.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return (Attempt.Done, Failed(clientAborted.IsCancellationRequested ? ForwarderError.ClientAborted : ForwarderError.UpstreamTimeout));
            }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                outcome = HeadOutcome.Closed;
            }

            if (outcome == HeadOutcome.Closed && connection.Reused)
            {
                return (Attempt.RetryOnNewConnection, default);
            }

            if (outcome != HeadOutcome.Complete)
            {
                return (Attempt.Done, Failed(outcome == HeadOutcome.Closed ? ForwarderError.UpstreamConnect : ForwarderError.UpstreamProtocol));
            }

            var strip = exchange.StripUsage && head.IsEventStream;
            ResponseHeaders.Apply(context.Response, head, keepContentLength: !strip);
            connection.Body.Start(connection.Reader, head.Framing, head.ContentLength);

            var mode = head.IsEventStream ? RelayMode.Sse : head.StatusCode is >= 200 and < 300 ? RelayMode.JsonWithUsage : RelayMode.Raw;
            var relay = new Relay(mode, strip, activity, exchange.ActivityTimeout);
            ForwarderError error;
            try
            {
                error = await relay.RunAsync(connection.Body, context.Response.BodyWriter, time, started, clientAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                error = ForwarderError.ClientAborted;
            }
            catch (OperationCanceledException)
            {
                error = ForwarderError.UpstreamTimeout;
            }
            catch (IOException)
            {
                error = ForwarderError.UpstreamResponseBody;
            }

            if (error is ForwarderError.UpstreamTimeout or ForwarderError.UpstreamResponseBody)
            {
                // The status line (and maybe some events) already went out: cutting the
                // connection is the only honest way to tell the client the body is incomplete.
                context.Abort();
            }

            reusable = error == ForwarderError.None && head.KeepAlive && connection.Body.IsComplete;
            var usage = error == ForwarderError.None ? relay.Usage : null;
            return (Attempt.Done, new ForwardResult(error, error == ForwarderError.ClientAborted ? 499 : head.StatusCode, usage, relay.FirstByte));
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
            if (reusable)
            {
                await pool.ReturnAsync(connection).ConfigureAwait(false);
            }
            else
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static ForwardResult Failed(ForwarderError error) =>
        new(error, error == ForwarderError.ClientAborted ? 499 : 0, null, null);

    private enum HeadOutcome : byte
    {
        Complete,
        Closed,  // the worker closed (or reset) before sending a whole head
        Invalid, // not an HTTP/1.x response
    }

    // Reads up to the end of the final (non-1xx) response head; the body follows in `reader`.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<HeadOutcome> ReadHeadAsync(PipeReader reader, ResponseHead head, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            switch (ResponseHeadParser.TryParse(buffer, head, out var consumed))
            {
                case ParseStatus.Complete:
                    reader.AdvanceTo(consumed);
                    if (head.StatusCode >= 200)
                    {
                        return HeadOutcome.Complete;
                    }

                    continue; // 1xx: an interim response; the final one follows
                case ParseStatus.Invalid:
                    reader.AdvanceTo(buffer.End);
                    return HeadOutcome.Invalid;
            }

            if (result.IsCompleted)
            {
                var empty = buffer.IsEmpty;
                reader.AdvanceTo(buffer.End);
                return empty ? HeadOutcome.Closed : HeadOutcome.Invalid;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    // What every attempt of one request shares.
    private readonly record struct Exchange(HttpContext Context, ReadOnlyMemory<byte> Request, bool StripUsage, TimeSpan ActivityTimeout);

    private enum RelayMode : byte
    {
        Sse,
        JsonWithUsage,
        Raw,
    }

    // The copy loop's state for one response.
    private sealed class Relay(RelayMode mode, bool stripUsage, CancellationTokenSource activity, TimeSpan activityTimeout)
    {
        private readonly SseUsageFilter _sse = new(stripUsage);
        private UsageJsonScanner _json;

        public Usage? Usage { get; private set; }

        public TimeSpan? FirstByte { get; private set; }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<ForwarderError> RunAsync(PipeReader upstream, PipeWriter client, TimeProvider time, long started, CancellationToken clientAborted)
        {
            long pendingWritten = 0; // JSON mode: bytes at the buffer's start already sent on
            while (true)
            {
                var result = await upstream.ReadAsync(activity.Token).ConfigureAwait(false);
                activity.CancelAfter(activityTimeout);
                var buffer = result.Buffer;

                SequencePosition consumed;
                long written;
                if (mode == RelayMode.Sse)
                {
                    consumed = _sse.Process(buffer, client, result.IsCompleted, out written);
                }
                else
                {
                    written = BufferCopy.Write(client, buffer.Slice(pendingWritten));
                    var consumedCount = mode == RelayMode.JsonWithUsage ? _json.Feed(buffer, result.IsCompleted) : buffer.Length;
                    consumed = buffer.GetPosition(consumedCount);
                    pendingWritten = buffer.Length - consumedCount;
                }

                upstream.AdvanceTo(consumed, buffer.End);

                if (written > 0)
                {
                    FirstByte ??= time.GetElapsedTime(started);
                    var flush = await client.FlushAsync(clientAborted).ConfigureAwait(false);
                    if (flush.IsCompleted || flush.IsCanceled || clientAborted.IsCancellationRequested)
                    {
                        return ForwarderError.ClientAborted;
                    }

                    // Time spent waiting on a slow client is not the upstream's silence.
                    activity.CancelAfter(activityTimeout);
                }

                if (result.IsCompleted)
                {
                    Usage = mode == RelayMode.Sse ? _sse.Usage
                        : mode == RelayMode.JsonWithUsage && _json.Found ? _json.Usage
                        : null;

                    return ForwarderError.None;
                }
            }
        }
    }
}
