using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using AotProxy.Accounting;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace AotProxy.Forwarding;

// Sends one request to one worker and streams the answer back to the client through pipes.
// SSE: each whole event goes out as soon as it has arrived (flush per read), and the usage-only
// chunk the gateway itself asked for is dropped. JSON: bytes go out as they arrive while an
// incremental reader picks `usage` out of them.
internal sealed class Forwarder(HttpMessageInvoker http, TimeProvider time)
{
    // 16 KiB reads: a whole chat chunk (≈300 B) or several per syscall, without holding a large
    // buffer per stream.
    private static readonly StreamPipeReaderOptions UpstreamReaderOptions = new(bufferSize: 16 * 1024, minimumReadSize: 1024, leaveOpen: true);

    public async Task<ForwardResult> ForwardAsync(
        HttpContext context,
        WorkerState worker,
        ReadOnlyMemory<byte> body,
        string requestId,
        bool stripUsage,
        TimeSpan activityTimeout)
    {
        var clientAborted = context.RequestAborted;
        using var activity = CancellationTokenSource.CreateLinkedTokenSource(clientAborted);
        activity.CancelAfter(activityTimeout);
        var started = time.GetTimestamp();

        HttpResponseMessage response;
        using (var request = CreateRequest(context, worker, body, requestId))
        {
            try
            {
                response = await http.SendAsync(request, activity.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                return new ForwardResult(ForwarderError.ClientAborted, 0, null, null);
            }
            catch (OperationCanceledException)
            {
                return new ForwardResult(ForwarderError.UpstreamTimeout, 0, null, null);
            }
            catch (HttpRequestException)
            {
                return new ForwardResult(ForwarderError.UpstreamConnect, 0, null, null);
            }
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            var isSse = response.Content.Headers.ContentType?.MediaType == "text/event-stream";
            var strip = stripUsage && isSse;
            CopyResponseHeaders(context.Response, response, dropContentLength: strip);
            context.Response.StatusCode = status;

            var relay = new Relay(
                isSse ? RelayMode.Sse : status is >= 200 and < 300 ? RelayMode.JsonWithUsage : RelayMode.Raw,
                strip,
                activity,
                activityTimeout);
            ForwarderError error;
            try
            {
                var stream = await response.Content.ReadAsStreamAsync(activity.Token).ConfigureAwait(false);
                var upstream = PipeReader.Create(stream, UpstreamReaderOptions);
                try
                {
                    error = await relay.RunAsync(upstream, context.Response.BodyWriter, time, started, clientAborted).ConfigureAwait(false);
                }
                finally
                {
                    await upstream.CompleteAsync().ConfigureAwait(false);
                }
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

            var usage = error == ForwarderError.None ? relay.Usage : null;
            return new ForwardResult(error, error == ForwarderError.ClientAborted ? 499 : status, usage, relay.FirstByte);
        }
    }

    private static HttpRequestMessage CreateRequest(HttpContext context, WorkerState worker, ReadOnlyMemory<byte> body, string requestId)
    {
        var incoming = context.Request;
        var pathAndQuery = incoming.QueryString.HasValue
            ? string.Concat(incoming.Path.Value.AsSpan(1), incoming.QueryString.Value)
            : incoming.Path.Value!.Substring(1);
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(worker.Model.Url, pathAndQuery))
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ReadOnlyMemoryContent(body),
        };

        foreach (var header in incoming.Headers)
        {
            if (!HeaderPolicy.ForwardToUpstream(header.Key))
            {
                continue;
            }

            // TryAdd*: a header the client sent malformed is dropped, not a reason to fail.
            if (HeaderPolicy.IsContentHeader(header.Key))
            {
                request.Content.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value);
            }
            else
            {
                request.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value);
            }
        }

        if (request.Content.Headers.ContentType is null)
        {
            request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        }

        request.Headers.TryAddWithoutValidation("x-request-id", requestId);
        if (worker.Authorization is { } authorization)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        return request;
    }

    private static void CopyResponseHeaders(HttpResponse response, HttpResponseMessage upstream, bool dropContentLength)
    {
        var headers = response.Headers;
        foreach (var header in upstream.Headers.NonValidated)
        {
            if (HeaderPolicy.ForwardToClient(header.Key))
            {
                headers[header.Key] = ToStringValues(header.Value);
            }
        }

        foreach (var header in upstream.Content.Headers.NonValidated)
        {
            if (HeaderPolicy.ForwardToClient(header.Key)
                && !(dropContentLength && header.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)))
            {
                headers[header.Key] = ToStringValues(header.Value);
            }
        }
    }

    private static StringValues ToStringValues(System.Net.Http.Headers.HeaderStringValues values)
    {
        if (values.Count == 1)
        {
            return values.ToString();
        }

        var array = new string[values.Count];
        var i = 0;
        foreach (var value in values)
        {
            array[i++] = value;
        }

        return array;
    }

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

        public async Task<ForwarderError> RunAsync(PipeReader upstream, PipeWriter client, TimeProvider time, long started, CancellationToken clientAborted)
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
