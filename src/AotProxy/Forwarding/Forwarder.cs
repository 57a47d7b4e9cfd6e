using System.Collections.Immutable;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Limits;
using AotProxy.Memory;
using AotProxy.Routing;
using AotProxy.Threading;
using AotProxy.Tracing;
using AotProxy.Upstream;
using Microsoft.AspNetCore.Http;

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

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<ForwardResult> ForwardAsync(
        HttpContext context,
        WorkerState worker,
        ReadOnlyMemory<byte> body,
        ContentMeter meter, // started for this attempt: each SSE content chunk is debited (stream_budget_cutoff) and charged as it is relayed; at the end, what the worker used
        string requestId,
        bool stripUsage,
        long promptEstimate,
        bool retryOnStatus,
        TimeSpan activityTimeout, // the longest upstream silence: forwarding.activity_timeout, or a stream's stream_idle_timeout
        TimeSpan connectTimeout,
        ImmutableArray<IPNetwork> trustedProxies,
        Activity? span = null, // the attempt's span: its ids go to the worker, its events are added here
        PrefillLease? prefill = null, // told the first byte: the worker's prefill is over
        PreemptionTicket? preemption = null, // a preemptible request's: cancels the attempt unless its first byte came first
        EndpointKind endpoint = EndpointKind.ChatCompletions, // whose events the relay reads, and whose shape an error event takes
        FirstTokenWatch? firstToken = null, // told the first byte: protection no longer counts the request as awaiting it
        RequestBody? clientBody = null) // `body`'s owner: given back at the first byte relayed, after which no attempt follows
    {
        var clientAborted = context.RequestAborted;
        // Queue updates (Admission/QueueUpdates) sent the 200 and an SSE head while the request
        // waited: the worker's head is not applied, and only its event stream can follow them.
        var headSent = context.Response.HasStarted;
        var pool = worker.Connections;
        var request = BuildRequest(context, pool.Endpoint, worker.Authorization, body.Span, requestId, trustedProxies, span, out var length);
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
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    connection = await pool.RentAsync(connectTimeout, clientAborted).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
                {
                    return Failed(ForwarderError.ClientAborted);
                }
                catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or AuthenticationException)
                {
                    return Failed(ForwarderError.UpstreamConnect);
                }

                var activity = connection.Activity;
                registration = clientAborted.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), activity);
                if (preemption is not null)
                {
                    preempted = preemption.Token.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), activity);
                }

                activity.CancelAfter(activityTimeout);
                started = time.GetTimestamp();
                var outcome = HeadOutcome.NeedMore;
                var sent = false;
                try
                {
                    await connection.SendAsync(request.AsMemory(0, length), activity.Token).ConfigureAwait(false);
                    sent = true;
                    TraceSpan.Event(span, TraceNames.RequestSentEvent);
                    while (outcome == HeadOutcome.NeedMore)
                    {
                        if (connection.Reader.WouldWait)
                        {
                            // The worker's queue and prefill are waited out here as the tokens are
                            // below: no reader's state machine box while the stream has no head yet.
                            await connection.Reader.WaitAsync(activity.Token).ConfigureAwait(false);
                        }

                        var read = await connection.Reader.ReadAsync(activity.Token).ConfigureAwait(false);
                        outcome = ReadHead(connection.Reader, read, connection.Head);
                    }
                }
                catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
                {
                    // The worker has the request (prefill may be done): the client's abort is
                    // estimated like a stream cut before its first token. Not retried, so not twice.
                    if (sent)
                    {
                        meter.Usage = Accounting.Usage.Estimate(promptEstimate, 0);
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
            BufferPool.Shared.Return(request);
            request = null;
            var head = connection.Head;
            TraceSpan.Event(span, TraceNames.ResponseHeadEvent, TraceNames.StatusCode, head.StatusCode);
            var retryAfter = head.StatusCode is 503 or 429 ? RetryAfterHeader.Of(head) : TimeSpan.Zero; // a push-back
            if (retryOnStatus && (head.StatusCode >= 500 || head.StatusCode == 429))
            {
                // Not relayed: the caller tries another worker. The connection is not reused,
                // since its unread body would be in the way.
                return new ForwardResult(ForwarderError.UpstreamStatus, head.StatusCode, null, ResponseStarted: false, RetryAfter: retryAfter);
            }

            var client = context.Response.BodyWriter;
            if (headSent && !(head.IsEventStream && head.StatusCode is >= 200 and < 300))
            {
                if (preemption is not null && !preemption.TryStart())
                {
                    return Failed(ForwarderError.Preempted);
                }

                // Nothing of it is relayed: after the queue's comments a status line cannot follow,
                // so the client gets the terminal error event (accounted as nothing served).
                OpenAiError.WriteStreamError(client, endpoint, "server_error", "upstream_error", $"Worker {worker.Name} answered HTTP {head.StatusCode} without an event stream.");
                await client.FlushAsync(clientAborted).ConfigureAwait(false);
                return new ForwardResult(ForwarderError.None, head.StatusCode, null, ResponseStarted: true);
            }

            var strip = stripUsage && head.IsEventStream;
            var applied = headSent ? UInt128.Zero : ResponseHeaders.Apply(context.Response, head, keepContentLength: !strip);
            var upstream = connection.Body;
            upstream.Start(connection.Reader, head.Framing, head.ContentLength);
            relay = new Relay(head.IsEventStream ? RelayMode.Sse : head.StatusCode is >= 200 and < 300 ? RelayMode.JsonWithUsage : RelayMode.Raw, strip, meter, endpoint);
            TimeSpan? firstByte = null;
            var error = ForwarderError.None;
            try
            {
                while (true)
                {
                    if (upstream.WouldWait)
                    {
                        // Between two tokens a stream waits here, with no buffer and no reader's
                        // state machine below this one; the read after it completes at once.
                        await upstream.WaitAsync(connection.Activity.Token).ConfigureAwait(false);
                    }

                    // Nothing of the read is used past an await below (a local that is would be a
                    // field of this method's box, which a stream holds to its end): only `completed`.
                    var result = await upstream.ReadAsync(connection.Activity.Token).ConfigureAwait(false);
                    connection.Activity.CancelAfter(activityTimeout);
                    var buffer = result.Buffer;
                    var completed = result.IsCompleted;
                    if (preemption is not null)
                    {
                        // The race with a preemption, decided before anything of the body reaches
                        // the client: the first byte wins, or nothing is relayed.
                        if (!preemption.TryStart())
                        {
                            upstream.AdvanceTo(buffer.Start, buffer.End);
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
                        upstream.AdvanceTo(consumed);
                        completed = false;
                    }
                    else
                    {
                        upstream.AdvanceTo(consumed, buffer.End);
                    }

                    if (written > 0)
                    {
                        if (firstByte is null)
                        {
                            firstByte = time.GetElapsedTime(started);
                            // From here nothing is reverted or sent again: a long stream holds
                            // neither its head's copy nor the client's body (perf/RESULTS.md, issue 22).
                            head.ReleaseHeaders();
                            clientBody?.Dispose();
                            TraceSpan.Event(span, TraceNames.FirstTokenEvent);
                            prefill?.OnFirstByte(firstByte);
                            firstToken?.End();
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
                        WriteBudgetCut(client, endpoint, meter.Budget);
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
                    ResponseHeaders.Revert(context.Response, head, applied);
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
                        ResponseHeaders.Revert(context.Response, head, applied);
                    }

                    return new ForwardResult(error, 0, null, ResponseStarted: false);
                }

                if (error == ForwarderError.UpstreamTimeout && head.IsEventStream)
                {
                    // Events went out, then the worker went silent for the stream's window: the
                    // stream ends with an error event the client's SDK raises, not a bare reset.
                    // The relay only ever sends whole events, so this one starts on a boundary.
                    OpenAiError.WriteStreamError(client, endpoint, "server_error", StreamIdleTimeoutCode, $"The worker sent nothing for {Duration.Format(activityTimeout)} (stream_idle_timeout); the stream is incomplete.");
                    await client.FlushAsync(clientAborted).ConfigureAwait(false);
                }
                else
                {
                    // The status line (and maybe some events) already went out: cutting the
                    // connection is the only honest way to tell the client the body is incomplete.
                    context.Abort();
                }
            }

            reusable = error == ForwarderError.None && !relay.BudgetCut && head.KeepAlive && upstream.IsComplete;
            handed = true;
            meter.Usage = relay.UsageOrEstimate(promptEstimate);
            return new ForwardResult(
                error,
                error == ForwarderError.ClientAborted ? GatewayStatusCodes.Status499ClientClosedRequest : head.StatusCode,
                firstByte,
                ResponseStarted: true,
                EventStream: head.IsEventStream,
                RetryAfter: retryAfter,
                BudgetCut: relay.BudgetCut);
        }
        finally
        {
            relay.Release();
            if (!handed)
            {
                meter.GiveBack(); // not accounted: the debits are charged nothing
            }

            await registration.DisposeAsync().ConfigureAwait(false);
            await preempted.DisposeAsync().ConfigureAwait(false);
            if (request is not null)
            {
                BufferPool.Shared.Return(request);
            }

            if (connection is not null)
            {
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

    private static ForwardResult Failed(ForwarderError error) =>
        new(error, error == ForwarderError.ClientAborted ? GatewayStatusCodes.Status499ClientClosedRequest : 0, null, ResponseStarted: false);

    private static byte[] BuildRequest(HttpContext context, UpstreamEndpoint endpoint, string? authorization, ReadOnlySpan<byte> body, string requestId, ImmutableArray<IPNetwork> trustedProxies, Activity? span, out int length)
    {
        var incoming = context.Request;
        var path = incoming.Path.Value ?? "/";
        var query = incoming.QueryString.Value ?? string.Empty;
        var peer = context.Connection.RemoteIpAddress;
        var trusted = TrustedNetwork.Contains(trustedProxies, peer);
        for (var room = HeadRoom; ; room *= 32)
        {
            var buffer = BufferPool.Shared.Rent(room + body.Length);
            var head = RequestHeadWriter.Write(buffer.AsSpan(0, buffer.Length - body.Length), incoming.Method, endpoint, path, query, incoming.Headers, body.Length, requestId, authorization, peer, trusted, span);
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
