using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Hosting.Epoll;
using AotProxy.Http;
using AotProxy.Limits;
using AotProxy.Memory;
using AotProxy.Routing;
using AotProxy.Threading;
using AotProxy.Tracing;
using AotProxy.Upstream;

namespace AotProxy.Forwarding;

// Sends one request to one worker over a pooled HTTP/1.1 connection and streams the answer back
// to the client through pipes. SSE: each whole event goes out as soon as it has arrived (flush
// per read), and the usage-only chunk the gateway itself asked for is dropped. JSON: bytes go
// out as they arrive while an incremental reader picks `usage` out of them.
//
// One async method from connect to the last byte: every nested async method that waits costs a
// state-machine object per request (perf/RESULTS.md, allocations), so the steps that do not
// wait are plain methods.
internal sealed class Forwarder(TimeProvider time)
{
    // Room for the request line and headers in front of the body; a head that does not fit
    // (Kestrel allows 32 KiB of client headers) is written again into a larger buffer.
    private const int HeadRoom = 2048;

    // The `code` of the error event that ends a stream whose worker went silent after its first event.
    public const string StreamIdleTimeoutCode = "stream_idle_timeout";

    // The `code` of the error event that ends a stream at its tenant's budget (stream_budget_cutoff).
    public const string BudgetExhaustedCode = "budget_exhausted";

    private enum HeadOutcome : byte
    {
        NeedMore,
        Complete,
        Closed,  // the worker closed (or reset) before sending a whole head
        Invalid, // not an HTTP/1.x response
    }

    // One attempt of `request` on `worker`. retryOnStatus: a 5xx or 429 is held back for a retry
    // (one can follow). span: the attempt's (its ids go to the worker, its events are added here).
    // preemption: a preemptible request's ticket, which cancels the attempt unless its first byte
    // came first. What the attempt used is set on request.Meter, started for it by the stage: each
    // SSE content chunk is debited (stream_budget_cutoff) and charged as it is relayed. The rest is
    // read from the request where it is used: a stream holds this method's box to its end, and
    // each parameter or local kept across an await is a field of it (perf/RESULTS.md, issue 22).
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<ForwardResult> ForwardAsync(ProxyRequest request, WorkerState worker, bool retryOnStatus, Activity? span, PreemptionTicket? preemption)
    {
        var clientAborted = request.Context.RequestAborted; // read once: Kestrel's getter takes a lock
        // Queue updates (Admission/QueueUpdates) sent the 200 and an SSE head while the request
        // waited: the worker's head is not applied, and only its event stream can follow them.
        var headSent = request.Context.Response.HasStarted;
        var activityTimeout = ActivityTimeout(request);
        var wire = BuildRequest(request, worker, span, out var length);
        UpstreamConnection? connection = null;
        CancellationTokenRegistration registration = default;
        CancellationTokenRegistration preempted = default;
        var reusable = false;
        var relay = default(Relay);
        var handed = false; // the meter's budget debits are the caller's to settle
        try
        {
            // Send and read the head; a reused connection the worker had closed gets one more
            // try on a new connection (nothing of the response was seen, so nothing is lost).
            long started;
            var clientLoop = request.Context.Features.Get<EpollLoop>(); // the client connection's (epoll transport)
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    connection = await worker.Connections.RentAsync(clientLoop, request.Snapshot.Forwarding.ConnectTimeout, clientAborted).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
                {
                    return Failed(ForwarderError.ClientAborted);
                }
                catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or AuthenticationException)
                {
                    return Failed(ForwarderError.UpstreamConnect);
                }

                registration = clientAborted.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), connection.Activity);
                if (preemption is not null)
                {
                    preempted = preemption.Token.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), connection.Activity);
                }

                connection.Activity.CancelAfter(activityTimeout);
                started = time.GetTimestamp();
                var outcome = HeadOutcome.NeedMore;
                var sent = false;
                try
                {
                    await connection.SendAsync(wire.AsMemory(0, length), connection.Activity.Token).ConfigureAwait(false);
                    sent = true;
                    TraceSpan.Event(span, TraceNames.RequestSentEvent);
                    while (outcome == HeadOutcome.NeedMore)
                    {
                        if (connection.Reader.WouldWait)
                        {
                            // The worker's queue and prefill are waited out here as the tokens are
                            // below: no reader's state machine box while the stream has no head yet.
                            await connection.Reader.WaitAsync(connection.Activity.Token).ConfigureAwait(false);
                        }

                        var read = await connection.Reader.ReadAsync(connection.Activity.Token).ConfigureAwait(false);
                        outcome = ReadHead(connection.Reader, read, connection.Head);
                    }
                }
                catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
                {
                    // The worker has the request (prefill may be done): the client's abort is
                    // estimated like a stream cut before its first token. Not retried, so not twice.
                    if (sent)
                    {
                        request.Meter.Usage = Accounting.Usage.Estimate(request.Reservation.Prompt, 0);
                    }

                    return Failed(ForwarderError.ClientAborted);
                }
                catch (OperationCanceledException) when (preemption is { IsPreempted: true })
                {
                    return Failed(ForwarderError.Preempted);
                }
                catch (OperationCanceledException)
                {
                    return Failed(ForwarderError.UpstreamTimeout);
                }
                catch (Exception ex) when (ex is IOException or SocketException)
                {
                    outcome = HeadOutcome.Closed;
                }

                if (outcome == HeadOutcome.Complete)
                {
                    break;
                }

                if (outcome != HeadOutcome.Closed || !connection.Reused || attempt > 0)
                {
                    return Failed(outcome == HeadOutcome.Closed ? ForwarderError.UpstreamConnect : ForwarderError.UpstreamProtocol);
                }

                await registration.DisposeAsync().ConfigureAwait(false);
                registration = default;
                await preempted.DisposeAsync().ConfigureAwait(false);
                preempted = default;
                await connection.DisposeAsync().ConfigureAwait(false);
                connection = null;
            }

            // The head is in: nothing will be sent again on this attempt, so a long stream does not
            // hold the request's (at least 4 KiB) buffer (perf/RESULTS.md, issue 22).
            BufferPool.Shared.Return(wire);
            wire = null;
            TraceSpan.Event(span, TraceNames.ResponseHeadEvent, TraceNames.StatusCode, connection.Head.StatusCode);
            var retryAfter = connection.Head.StatusCode is 503 or 429 ? RetryAfterHeader.Of(connection.Head) : TimeSpan.Zero; // a push-back
            if (retryOnStatus && (connection.Head.StatusCode >= 500 || connection.Head.StatusCode == 429))
            {
                // Not relayed: the caller tries another worker. The connection is not reused,
                // since its unread body would be in the way.
                return new ForwardResult(ForwarderError.UpstreamStatus, connection.Head.StatusCode, null, ResponseStarted: false, RetryAfter: retryAfter);
            }

            var client = request.Context.Response.BodyWriter;
            if (headSent && !(connection.Head.IsEventStream && connection.Head.StatusCode is >= 200 and < 300))
            {
                if (preemption is not null && !preemption.TryStart())
                {
                    return Failed(ForwarderError.Preempted);
                }

                // Nothing of it is relayed: after the queue's comments a status line cannot follow,
                // so the client gets the terminal error event (accounted as nothing served).
                OpenAiError.WriteStreamError(client, request.Endpoint, "server_error", "upstream_error", $"Worker {worker.Name} answered HTTP {connection.Head.StatusCode} without an event stream.");
                await client.FlushAsync(clientAborted).ConfigureAwait(false);
                return new ForwardResult(ForwarderError.None, connection.Head.StatusCode, null, ResponseStarted: true);
            }

            var strip = request.Inspected.NeedsUsageInjection && connection.Head.IsEventStream;
            var applied = headSent ? UInt128.Zero : ResponseHeaders.Apply(request.Context.Response, connection.Head, keepContentLength: !strip);
            connection.Body.Start(connection.Reader, connection.Head.Framing, connection.Head.ContentLength);
            relay = new Relay(connection.Head.IsEventStream ? RelayMode.Sse : connection.Head.StatusCode is >= 200 and < 300 ? RelayMode.JsonWithUsage : RelayMode.Raw, strip, request.Meter, request.Endpoint);
            TimeSpan? firstByte = null;
            var error = ForwarderError.None;
            try
            {
                while (true)
                {
                    if (connection.Body.WouldWait)
                    {
                        // Between two tokens a stream waits here, with no buffer and no reader's
                        // state machine below this one; the read after it completes at once.
                        await connection.Body.WaitAsync(connection.Activity.Token).ConfigureAwait(false);
                    }

                    // Nothing of the read is used past an await below (a local that is would be a
                    // field of this method's box, which a stream holds to its end): only `completed`.
                    var result = await connection.Body.ReadAsync(connection.Activity.Token).ConfigureAwait(false);
                    connection.Activity.CancelAfter(activityTimeout);
                    var buffer = result.Buffer;
                    var completed = result.IsCompleted;
                    if (preemption is not null)
                    {
                        // The race with a preemption, decided before anything of the body reaches
                        // the client: the first byte wins, or nothing is relayed.
                        if (!preemption.TryStart())
                        {
                            connection.Body.AdvanceTo(buffer.Start, buffer.End);
                            error = ForwarderError.Preempted;
                            break;
                        }

                        preemption = null;
                    }

                    var consumed = relay.Process(buffer, completed, client, out var written);
                    if (relay.NeedsBlock)
                    {
                        // The next chunk needs a block of the fleet's budgets: what came before it
                        // goes out now, the block is leased below (one round trip), and the next
                        // read returns the rest of this one at once (not examined).
                        connection.Body.AdvanceTo(consumed);
                        completed = false;
                    }
                    else
                    {
                        connection.Body.AdvanceTo(consumed, buffer.End);
                    }

                    if (written > 0)
                    {
                        if (firstByte is null)
                        {
                            firstByte = time.GetElapsedTime(started);
                            // From here nothing is reverted or sent again: a long stream does
                            // not hold its head's copy, and the request gives its body back.
                            connection.Head.ReleaseHeaders();
                            TraceSpan.Event(span, TraceNames.FirstTokenEvent);
                            request.OnFirstByte(firstByte.Value);
                        }

                        var flush = await client.FlushAsync(clientAborted).ConfigureAwait(false);
                        if (flush.IsCompleted || flush.IsCanceled || clientAborted.IsCancellationRequested)
                        {
                            error = ForwarderError.ClientAborted;
                            break;
                        }

                        // Time spent waiting on a slow client is not the upstream's silence.
                        connection.Activity.CancelAfter(activityTimeout);
                    }

                    if (relay.NeedsBlock)
                    {
                        relay.AddBlock(await relay.LeaseBlockAsync().ConfigureAwait(false));
                    }

                    if (relay.BudgetCut)
                    {
                        // The tenant's budget has no room for the next chunk: it is not relayed, the
                        // stream ends with an error event the client's SDK raises, and the upstream
                        // request is cancelled with its connection (never reused). One writer for this
                        // and the idle timeout's event; it starts on an event boundary.
                        WriteBudgetCut(client, request.Endpoint, request.Meter.Budget);
                        await client.FlushAsync(clientAborted).ConfigureAwait(false);
                        break;
                    }

                    if (completed)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                error = ForwarderError.ClientAborted;
            }
            catch (OperationCanceledException) when (preemption is { IsPreempted: true })
            {
                error = ForwarderError.Preempted;
            }
            catch (OperationCanceledException)
            {
                error = ForwarderError.UpstreamTimeout;
            }
            catch (IOException)
            {
                error = ForwarderError.UpstreamResponseBody;
            }

            if (error == ForwarderError.Preempted)
            {
                // Nothing of the worker's body reached the client: its head is taken back, and the
                // request waits again (DataPlaneHandler). Its connection is not reused.
                if (!headSent)
                {
                    ResponseHeaders.Revert(request.Context.Response, connection.Head, applied);
                }

                return Failed(ForwarderError.Preempted);
            }

            if (error is ForwarderError.UpstreamTimeout or ForwarderError.UpstreamResponseBody)
            {
                if (firstByte is null)
                {
                    // Nothing of the answer reached the client (bad chunking or a reset before the
                    // first byte): the worker's head is taken back, and the caller retries on
                    // another worker or answers 502/504 with a status line (an error event after
                    // queue updates). Nothing was relayed, so nothing is accounted, as for an
                    // error status held back for a retry.
                    if (!headSent)
                    {
                        ResponseHeaders.Revert(request.Context.Response, connection.Head, applied);
                    }

                    return new ForwardResult(error, 0, null, ResponseStarted: false);
                }

                if (error == ForwarderError.UpstreamTimeout && connection.Head.IsEventStream)
                {
                    // Events went out, then the worker went silent for the stream's window: the
                    // stream ends with an error event the client's SDK raises, not a bare reset.
                    // The relay only ever sends whole events, so this one starts on a boundary.
                    OpenAiError.WriteStreamError(client, request.Endpoint, "server_error", StreamIdleTimeoutCode, $"The worker sent nothing for {Duration.Format(activityTimeout)} (stream_idle_timeout); the stream is incomplete.");
                    await client.FlushAsync(clientAborted).ConfigureAwait(false);
                }
                else
                {
                    // The status line (and maybe some events) already went out: cutting the
                    // connection is the only honest way to tell the client the body is incomplete.
                    request.Context.Abort();
                }
            }

            reusable = error == ForwarderError.None && !relay.BudgetCut && connection.Head.KeepAlive && connection.Body.IsComplete;
            handed = true;
            request.Meter.Usage = relay.UsageOrEstimate(request.Reservation.Prompt);
            return new ForwardResult(
                error,
                error == ForwarderError.ClientAborted ? GatewayStatusCodes.Status499ClientClosedRequest : connection.Head.StatusCode,
                firstByte,
                ResponseStarted: true,
                EventStream: connection.Head.IsEventStream,
                RetryAfter: retryAfter,
                BudgetCut: relay.BudgetCut);
        }
        finally
        {
            relay.Release();
            if (!handed)
            {
                request.Meter.GiveBack(); // not accounted: the debits are charged nothing
            }

            await registration.DisposeAsync().ConfigureAwait(false);
            await preempted.DisposeAsync().ConfigureAwait(false);
            if (wire is not null)
            {
                BufferPool.Shared.Return(wire);
            }

            if (connection is not null)
            {
                if (reusable)
                {
                    await worker.Connections.ReturnAsync(connection).ConfigureAwait(false);
                }
                else
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private static void WriteBudgetCut(PipeWriter client, EndpointKind endpoint, in StreamBudget streamed)
    {
        if (streamed.StoreClosed)
        {
            OpenAiError.WriteStreamError(client, endpoint, "server_error", OpenAiError.LimitStoreUnavailableCode, $"The limit store did not answer during this stream (stream_budget_cutoff, store_down = \"closed\"); it was ended after {streamed.Tokens} completion tokens.");
        }
        else
        {
            OpenAiError.WriteStreamError(client, endpoint, "insufficient_quota", BudgetExhaustedCode, $"The tenant ran out of budget during this stream (stream_budget_cutoff); it was ended after {streamed.Tokens} completion tokens.");
        }
    }

    // The longest upstream silence: a stream's model's stream_idle_timeout (before its first event too:
    // a silent worker is failed over while nothing reached the client); a JSON answer gets
    // activity_timeout, the whole prefill and decode of a long answer.
    private static TimeSpan ActivityTimeout(ProxyRequest request) =>
        request.Inspected.Stream ? request.Snapshot.Forwarding.StreamIdleTimeoutFor(request.Inspected.Model) : request.Snapshot.Forwarding.ActivityTimeout;

    private static ForwardResult Failed(ForwarderError error) =>
        new(error, error == ForwarderError.ClientAborted ? GatewayStatusCodes.Status499ClientClosedRequest : 0, null, ResponseStarted: false);

    private static byte[] BuildRequest(ProxyRequest request, WorkerState worker, Activity? span, out int length)
    {
        var incoming = request.Context.Request;
        var body = request.Body!.Span;
        var path = incoming.Path.Value ?? "/";
        var query = incoming.QueryString.Value ?? string.Empty;
        var peer = request.Context.Connection.RemoteIpAddress;
        var trusted = TrustedNetwork.Contains(request.Snapshot.Auth.TrustedSources, peer);
        for (var room = HeadRoom; ; room *= 32)
        {
            var buffer = BufferPool.Shared.Rent(room + body.Length);
            var head = RequestHeadWriter.Write(buffer.AsSpan(0, buffer.Length - body.Length), incoming.Method, worker.Connections.Endpoint, path, query, incoming.Headers, body.Length, request.RequestId, worker.Authorization, peer, trusted, span);
            if (head >= 0)
            {
                body.CopyTo(buffer.AsSpan(head));
                length = head + body.Length;
                return buffer;
            }

            BufferPool.Shared.Return(buffer);
        }
    }

    // One read towards the final (non-1xx) response head; the body follows in `reader`.
    private static HeadOutcome ReadHead(PipeReader reader, in ReadResult result, ResponseHead head)
    {
        var buffer = result.Buffer;
        while (true)
        {
            switch (ResponseHeadParser.TryParse(buffer, head, out var consumed))
            {
                case ParseStatus.Complete when head.StatusCode >= 200:
                    reader.AdvanceTo(consumed);
                    return HeadOutcome.Complete;
                case ParseStatus.Complete:
                    buffer = buffer.Slice(consumed); // 1xx: an interim response; the final one follows
                    continue;
                case ParseStatus.Invalid:
                    reader.AdvanceTo(buffer.End);
                    return HeadOutcome.Invalid;
            }

            if (result.IsCompleted)
            {
                reader.AdvanceTo(buffer.End);
                return buffer.IsEmpty ? HeadOutcome.Closed : HeadOutcome.Invalid;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            return HeadOutcome.NeedMore;
        }
    }
}
