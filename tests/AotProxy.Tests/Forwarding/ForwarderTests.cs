using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Gateway;
using AotProxy.Http;
using AotProxy.Inspection;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Tests.Forwarding;

// The forwarder alone, one attempt at a time, against a worker at the TCP level (loopback):
// Content-Length, chunked and SSE bodies, a reset before and after the first byte, silence
// (the activity timeout), a client that goes away, a keep-alive connection the worker closed,
// and 5xx answers. The client is an HttpContext whose response body records what was flushed.
// Expected bodies and usage come from the captures, read with a DOM parser.
public sealed class ForwarderTests : IAsyncLifetime
{
    private const long PromptEstimate = 42;
    private static readonly TimeSpan Connect = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Patient = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Impatient = TimeSpan.FromMilliseconds(300);
    private static readonly byte[] RequestJson = """{"model":"m","messages":[{"role":"user","content":"Hello"}],"stream":true}"""u8.ToArray();

    private readonly FakeTimeProvider _time = new();
    private readonly List<WorkerState> _workers = [];
    private readonly List<ClientLifetime> _clients = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            await worker.Connections.CloseAsync();
        }

        _clients.ForEach(c => c.Dispose());
    }

    [Fact]
    public async Task ContentLengthJson_IsRelayedWhole_WithItsUsage_OverOneKeepAliveConnection()
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        var requests = new List<LoopbackRequest>();
        await using var server = LoopbackTcpServer.KeepAlive(async (request, stream, ct) =>
        {
            lock (requests)
            {
                requests.Add(request);
            }

            await LoopbackTcpServer.WriteAsync(stream, Json(json), ct);
            return true;
        });
        var worker = Worker(server);

        for (var i = 0; i < 2; i++)
        {
            var (context, body, _) = Client();
            var result = await ForwardAsync(context, worker);

            Assert.Equal((ForwarderError.None, 200, true, false), (result.Error, result.StatusCode, result.ResponseStarted, result.EventStream));
            Assert.Equal(UsageOf(json), result.Usage);
            Assert.Equal(json, body.Text);
            Assert.Equal((200, Encoding.UTF8.GetByteCount(json), "application/json"), (context.Response.StatusCode, context.Response.ContentLength, context.Response.ContentType));
        }

        Assert.Equal((1, 2), (server.Connections, server.Requests));
        Assert.All(requests, r => Assert.StartsWith("POST /v1/chat/completions HTTP/1.1\r\n", r.Head, StringComparison.Ordinal));
        Assert.All(requests, r => Assert.Equal(RequestJson, r.Body));
        Assert.Equal(1, worker.Connections.IdleCount);
    }

    [Fact]
    public async Task ChunkedJson_IsRelayedWithoutItsFraming_WithItsUsage_OverOneKeepAliveConnection()
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("application/json") + string.Concat(json.Chunk(100).Select(c => Chunk(new string(c)))) + LastChunk, ct);
            return true;
        });
        var worker = Worker(server);

        for (var i = 0; i < 2; i++)
        {
            var (context, body, _) = Client();
            var result = await ForwardAsync(context, worker);

            Assert.Equal((ForwarderError.None, 200), (result.Error, result.StatusCode));
            Assert.Equal(UsageOf(json), result.Usage);
            Assert.Equal(json, body.Text);
            Assert.Null(context.Response.ContentLength);
        }

        Assert.Equal((1, 2), (server.Connections, server.Requests));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Sse_ReachesTheClientEventByEvent_WithoutTheUsageChunkTheGatewayAskedFor(bool stripUsage)
    {
        // The worker holds the rest of the stream back until the client has the first event:
        // a forwarder that waited for more than one read before flushing would never get it.
        var events = Events(Fixtures.Text("openai/chat_stream_usage.sse"));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream") + Chunk(events[0]), ct);
            await stream.FlushAsync(ct);
            await release.Task.WaitAsync(ct);
            await LoopbackTcpServer.WriteAsync(stream, string.Concat(events.Skip(1).Select(Chunk)) + LastChunk, ct);
            return true;
        });
        var worker = Worker(server);
        var (context, body, _) = Client();

        var forwarding = ForwardAsync(context, worker, stripUsage: stripUsage);
        await body.WaitUntilAsync(text => text == events[0], "the first event reached the client");
        release.SetResult();
        var result = await forwarding;

        var expected = stripUsage ? events.Where(e => !IsUsageOnly(e)) : events;
        Assert.Equal(string.Concat(expected), body.Text);
        Assert.Equal(events.Length - (stripUsage ? 1 : 0), expected.Count());
        Assert.Equal((ForwarderError.None, 200, true), (result.Error, result.StatusCode, result.EventStream));
        Assert.Equal(UsageOf(events.Single(IsUsageOnly)["data: ".Length..]), result.Usage);
        Assert.Equal("text/event-stream", context.Response.ContentType);
        Assert.Equal(1, worker.Connections.IdleCount);
    }

    [Fact]
    public async Task UpstreamResetBeforeTheFirstByte_IsAConnectFailure_TheClientGetsNothing_AndAnotherWorkerMayBeTried()
    {
        await using var server = LoopbackTcpServer.KeepAlive((_, stream, _) =>
        {
            LoopbackTcpServer.Reset(stream);
            return Task.FromResult(false);
        });
        var worker = Worker(server);
        var (context, body, client) = Client();

        var result = await ForwardAsync(context, worker);

        Assert.Equal((ForwarderError.UpstreamConnect, 0, false, true), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.Null(result.Usage);
        Assert.Empty(body.ToArray());
        Assert.False(client.AbortCalled);
        Assert.Equal((1, 1), (server.Connections, server.Requests)); // a new connection: not tried again
        Assert.Equal(0, worker.Connections.IdleCount);
    }

    [Fact]
    public async Task UpstreamResetAfterTheFirstEvents_CutsTheClientResponse_AndIsEstimatedFromWhatWasRelayed()
    {
        var events = Events(Fixtures.Text("openai/chat_stream_usage.sse"));
        var sent = events[..3];
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream") + string.Concat(sent.Select(Chunk)), ct);
            await stream.FlushAsync(ct);
            await release.Task.WaitAsync(ct);
            LoopbackTcpServer.Reset(stream);
            return false;
        });
        var worker = Worker(server);
        var (context, body, client) = Client();

        var forwarding = ForwardAsync(context, worker, stripUsage: true);
        await body.WaitUntilAsync(text => text == string.Concat(sent), "the first events reached the client");
        release.SetResult();
        var result = await forwarding;

        Assert.Equal((ForwarderError.UpstreamResponseBody, 200, true, false), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.True(client.AbortCalled, "the client's response was not cut: it would look complete");
        Assert.Equal(Usage.Estimate(PromptEstimate, ContentChunks(sent)), result.Usage);
        Assert.Equal(string.Concat(sent), body.Text);
        Assert.Equal(0, worker.Connections.IdleCount);
    }

    [Fact]
    public async Task UpstreamSilentBeforeItsHead_IsAnActivityTimeout_ThatMayBeRetried()
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await UntilClosedAsync(stream, closed, ct);
            return false;
        });
        var worker = Worker(server);
        var (context, body, client) = Client();

        var result = await ForwardAsync(context, worker, activity: Impatient);

        Assert.Equal((ForwarderError.UpstreamTimeout, 0, false, true), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.Null(result.Usage);
        Assert.Empty(body.ToArray());
        Assert.False(client.AbortCalled);
        await closed.Task.WaitAsync(Patient); // the silent connection is closed, not pooled
        Assert.Equal(0, worker.Connections.IdleCount);
    }

    [Fact]
    public async Task UpstreamSilentMidStream_EndsTheStreamWithAStreamIdleTimeoutErrorEvent()
    {
        var events = Events(Fixtures.Text("openai/chat_stream_usage.sse"));
        var sent = events[..4];
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream") + string.Concat(sent.Select(Chunk)), ct);
            await stream.FlushAsync(ct);
            await UntilClosedAsync(stream, closed, ct);
            return false;
        });
        var worker = Worker(server);
        var (context, body, client) = Client();

        var result = await ForwardAsync(context, worker, stripUsage: true, activity: Impatient);

        Assert.Equal((ForwarderError.UpstreamTimeout, 200, true, false), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.False(client.AbortCalled); // ended with an event the client's SDK raises, not a bare reset
        Assert.Equal(Usage.Estimate(PromptEstimate, ContentChunks(sent)), result.Usage);
        Assert.Equal(
            string.Concat(sent)
            + "data: {\"error\":{\"message\":\"The worker sent nothing for " + Duration.Format(Impatient) + " (stream_idle_timeout); the stream is incomplete.\",\"type\":\"server_error\",\"param\":null,\"code\":\"stream_idle_timeout\"}}\n\n"
            + "data: [DONE]\n\n",
            body.Text);
        await closed.Task.WaitAsync(Patient);
    }

    // stream_budget_cutoff: the worker would stream 200 tokens, the tenant's budget has room for
    // 12 beyond the prompt. The client gets exactly 12 content events, then the budget_exhausted
    // event and [DONE]; the worker's connection is closed (its request cancelled), the usage is
    // what was relayed, and settled with its debits the budget is spent exactly to its cap.
    [Fact]
    public async Task StreamPastItsTenantsBudget_IsEndedAtTheCap_WithTheBudgetExhaustedEvent_AndChargedWhatWasRelayed()
    {
        var events = Enumerable.Range(0, 200).Select(i => $"data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}}}}]}}\n\n").ToArray();
        var role = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream") + Chunk(role) + string.Concat(events.Select(Chunk)), ct);
            await stream.FlushAsync(ct);
            await UntilClosedAsync(stream, closed, ct);
            return false;
        });
        var worker = Worker(server);
        var (context, body, client) = Client();
        var state = new AotProxy.Limits.TenantBudgetState(new TenantBudgetModel(PromptEstimate + 12, 0, 0, 0), _time);
        state.TryReserve(PromptEstimate, 1000, default, rejectOverrun: false, out var reservation, streamCutoff: true);

        var result = await ForwardAsync(context, worker, budget: new AotProxy.Limits.StreamBudget(state, 0));

        Assert.Equal((ForwarderError.None, 200, true, true), (result.Error, result.StatusCode, result.ResponseStarted, result.BudgetCut));
        Assert.False(client.AbortCalled);
        Assert.Equal(12, result.Budget.Tokens);
        Assert.Equal(Usage.Estimate(PromptEstimate, 12), result.Usage);
        Assert.Equal(
            role + string.Concat(events[..12])
            + "data: {\"error\":{\"message\":\"The tenant ran out of budget during this stream (stream_budget_cutoff); it was ended after 12 completion tokens.\",\"type\":\"insufficient_quota\",\"param\":null,\"code\":\"budget_exhausted\"}}\n\n"
            + "data: [DONE]\n\n",
            body.Text);
        await closed.Task.WaitAsync(Patient); // the upstream request is cancelled with its connection
        Assert.Equal(0, worker.Connections.IdleCount);

        reservation.With(result.Budget).Settle(admitted: true, result.Usage);
        Assert.Equal((0L, PromptEstimate + 12), (state.ReservedTokens, state.SpentTokens));
    }

    // The client's body is the request's (ProxyRequest, which Inspection read it into): it goes back
    // to its pool with the first byte relayed (no attempt can follow, and a long stream held it to
    // its end), once; until then it is kept for a retry, and the forwarder never disposes it.
    [Fact]
    public async Task ClientBody_IsHeldUntilTheFirstByte_ThenGivenBackByTheRequestWhileTheStreamGoesOn()
    {
        var events = Events(Fixtures.Text("openai/chat_stream_usage.sse"));
        var held = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (context, body, _) = Client();
        var request = await RequestAsync(context);
        var clientBody = request.Body!;
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            held.TrySetResult(clientBody.HoldsBuffer && request.Body == clientBody); // the request is in, no byte of the answer out
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream") + Chunk(events[0]), ct);
            await stream.FlushAsync(ct);
            await more.Task.WaitAsync(ct);
            await LoopbackTcpServer.WriteAsync(stream, string.Concat(events[1..].Select(Chunk)) + LastChunk, ct);
            return true;
        });
        var worker = Worker(server);

        var forwarding = ForwardAsync(context, worker, request: request);
        Assert.True(await held.Task.WaitAsync(Patient));
        await body.WaitUntilAsync(text => text == events[0], "the first event reached the client");
        Assert.False(clientBody.HoldsBuffer);
        Assert.Null(request.Body);
        more.SetResult();
        var result = await forwarding;
        ProxyRequest.Return(request);

        Assert.Equal((ForwarderError.None, 200, true), (result.Error, result.StatusCode, result.ResponseStarted));
        Assert.Equal(string.Concat(events), body.Text);
        Assert.False(clientBody.HoldsBuffer);
    }

    // Every way an attempt ends before its first byte leaves the body with the request, whole,
    // for the next attempt; the request gives it back at its end. After the first byte (a client
    // gone mid-stream), the request gave it back then.
    [Theory]
    [InlineData("reset")]          // the worker reset the connection: UpstreamConnect
    [InlineData("503")]            // an error status held back for a retry: UpstreamStatus
    [InlineData("silent")]         // no head within the activity timeout: UpstreamTimeout
    [InlineData("client gone")]    // the client went away while the worker prefilled: ClientAborted
    [InlineData("client gone mid-stream")]
    public async Task ClientBody_StaysWithTheRequestUntilItsFirstByte_AndGoesBackOnce_WhateverTheAttemptsEnd(string end)
    {
        var events = Events(Fixtures.Text("openai/chat_stream_usage.sse"));
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            switch (end)
            {
                case "reset":
                    LoopbackTcpServer.Reset(stream);
                    return false;
                case "503":
                    await LoopbackTcpServer.WriteAsync(stream, Json(Fixtures.Text("openai/error_vllm.json"), "503 Service Unavailable"), ct);
                    return true;
                case "client gone mid-stream":
                    await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream") + Chunk(events[0]), ct);
                    await stream.FlushAsync(ct);
                    break;
            }

            await UntilClosedAsync(stream, closed, ct);
            return false;
        });
        var worker = Worker(server);
        var (context, body, client) = Client();
        var request = await RequestAsync(context, activity: end == "silent" ? Impatient : Timeout.InfiniteTimeSpan);
        var clientBody = request.Body!;

        var forwarding = ForwardAsync(context, worker, retryOnStatus: true, request: request);
        if (end == "client gone")
        {
            await server.WaitUntilAsync(s => s.Requests == 1, "the worker has the request");
            client.Disconnect();
        }
        else if (end == "client gone mid-stream")
        {
            await body.WaitUntilAsync(text => text == events[0], "the first event reached the client");
            client.Disconnect();
        }

        var result = await forwarding;
        var started = end == "client gone mid-stream";
        Assert.Equal(started, result.ResponseStarted);
        Assert.Equal(
            end switch { "reset" => ForwarderError.UpstreamConnect, "503" => ForwarderError.UpstreamStatus, "silent" => ForwarderError.UpstreamTimeout, _ => ForwarderError.ClientAborted },
            result.Error);
        Assert.Equal(started ? null : clientBody, request.Body);
        Assert.Equal(!started, clientBody.HoldsBuffer);

        ProxyRequest.Return(request);
        Assert.False(clientBody.HoldsBuffer);
    }

    // A retry sends the same body to the next worker: the failed attempt left it whole with the
    // request, and the one that answers gives it back at its first byte.
    [Fact]
    public async Task ClientBody_AfterAnAttemptHeldBackForARetry_GoesWholeToTheNextWorker()
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        await using var failing = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, Json(Fixtures.Text("openai/error_vllm.json"), "503 Service Unavailable"), ct);
            return true;
        });
        var received = new List<LoopbackRequest>();
        await using var answering = LoopbackTcpServer.KeepAlive(async (r, stream, ct) =>
        {
            lock (received)
            {
                received.Add(r);
            }

            await LoopbackTcpServer.WriteAsync(stream, Json(json), ct);
            return true;
        });
        var (context, body, _) = Client();
        var request = await RequestAsync(context);
        var clientBody = request.Body!;

        var first = await ForwardAsync(context, Worker(failing), retryOnStatus: true, request: request);
        Assert.Equal((ForwarderError.UpstreamStatus, true), (first.Error, first.MayRetry));
        Assert.Same(clientBody, request.Body);
        var second = await ForwardAsync(context, Worker(answering), request: request);
        ProxyRequest.Return(request);

        Assert.Equal((ForwarderError.None, 200), (second.Error, second.StatusCode));
        Assert.Equal(RequestJson, Assert.Single(received).Body);
        Assert.Equal(json, body.Text);
        Assert.False(clientBody.HoldsBuffer);
    }

    [Fact]
    public async Task ActivityTimeout_IsRestartedByEveryRead_SoASlowSteadyStreamOutlastsIt()
    {
        // 60 events 50 ms apart: 3 s in all, never 2 s silent (a 1 s timeout against 1.5 s of
        // events once failed in CI, the machine stalled for a second while apt installed).
        var events = Events(Fixtures.Text("openai/chat_stream.sse"));
        var events60 = Enumerable.Range(0, 60).Select(i => events[1 + (i % 4)]).Append(events[^1]).ToArray();
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream"), ct);
            foreach (var sseEvent in events60)
            {
                await LoopbackTcpServer.WriteAsync(stream, Chunk(sseEvent), ct);
                await stream.FlushAsync(ct);
                await Task.Delay(50, ct);
            }

            await LoopbackTcpServer.WriteAsync(stream, LastChunk, ct);
            return true;
        });
        var worker = Worker(server);
        var (context, body, _) = Client();
        var started = TimeProvider.System.GetTimestamp();

        var result = await ForwardAsync(context, worker, activity: TimeSpan.FromSeconds(2));

        Assert.Equal(ForwarderError.None, result.Error);
        Assert.Equal(string.Concat(events60), body.Text);
        Assert.True(TimeProvider.System.GetElapsedTime(started) > TimeSpan.FromSeconds(2), "the stream was shorter than the timeout, so this shows nothing");
    }

    [Fact]
    public async Task ClientAbortWhileWaitingForTheHead_CancelsTheUpstreamRequest_AndIsEstimatedAsSent()
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await UntilClosedAsync(stream, closed, ct);
            return false;
        });
        var worker = Worker(server);
        var (context, body, client) = Client();

        // No activity timeout at all: only the client's going away can end the wait.
        var forwarding = ForwardAsync(context, worker, activity: Timeout.InfiniteTimeSpan);
        await server.WaitUntilAsync(s => s.Requests == 1, "the worker has the request");
        client.Disconnect();
        var result = await forwarding;

        Assert.Equal((ForwarderError.ClientAborted, 499, false, false), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.Equal(Usage.Estimate(PromptEstimate, 0), result.Usage); // the worker may have run the prefill
        Assert.Empty(body.ToArray());
        await closed.Task.WaitAsync(Patient);
        Assert.Equal(0, worker.Connections.IdleCount);
    }

    [Fact]
    public async Task ClientAbortMidStream_CancelsTheUpstreamRequest_AndIsEstimatedFromTheEventsRelayed()
    {
        var events = Events(Fixtures.Text("openai/chat_stream_usage.sse"));
        var sent = events[..4];
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, ChunkedHead("text/event-stream") + string.Concat(sent.Select(Chunk)), ct);
            await stream.FlushAsync(ct);
            await UntilClosedAsync(stream, closed, ct);
            return false;
        });
        var worker = Worker(server);
        var (context, body, client) = Client();

        var forwarding = ForwardAsync(context, worker, stripUsage: true, activity: Timeout.InfiniteTimeSpan);
        await body.WaitUntilAsync(text => text == string.Concat(sent), "the first events reached the client");
        client.Disconnect();
        var result = await forwarding;

        Assert.Equal((ForwarderError.ClientAborted, 499, true), (result.Error, result.StatusCode, result.ResponseStarted));
        Assert.Equal(Usage.Estimate(PromptEstimate, ContentChunks(sent)), result.Usage);
        Assert.False(client.AbortCalled);
        await closed.Task.WaitAsync(Patient);
        Assert.Equal(0, worker.Connections.IdleCount);
    }

    [Fact]
    public async Task ReusedConnectionTheWorkerClosed_TheRequestGoesOnceMoreOnANewConnection()
    {
        // The worker answers, then closes without a Connection: close; on the manual clock no
        // time passes, so the pool hands the dead connection out unprobed.
        var json = Fixtures.Text("openai/chat_nonstream.json");
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, Json(json), ct);
            return false;
        });
        var worker = Worker(server);
        Assert.Equal(ForwarderError.None, (await ForwardAsync(Client().Context, worker)).Error);
        await server.WaitUntilAsync(s => s.Closed == 1, "the worker closed its idle connection");
        Assert.Equal(1, worker.Connections.IdleCount);

        var (context, body, _) = Client();
        var result = await ForwardAsync(context, worker);

        Assert.Equal((ForwarderError.None, 200), (result.Error, result.StatusCode));
        Assert.Equal(json, body.Text);
        Assert.Equal(UsageOf(json), result.Usage);
        Assert.Equal((2, 2), (server.Connections, server.Requests));
    }

    [Fact]
    public async Task ReusedConnectionTheWorkerClosed_IsTriedOnANewConnectionOnlyOnce()
    {
        var json = Fixtures.Text("openai/chat_nonstream.json");
        await using var server = LoopbackTcpServer.KeepAlive(async (request, stream, ct) =>
        {
            if (request.Number == 1)
            {
                await LoopbackTcpServer.WriteAsync(stream, Json(json), ct);
            }

            return false; // the second request, on a new connection: closed before a head
        });
        var worker = Worker(server);
        Assert.Equal(ForwarderError.None, (await ForwardAsync(Client().Context, worker)).Error);
        await server.WaitUntilAsync(s => s.Closed == 1, "the worker closed its idle connection");

        var (context, body, _) = Client();
        var result = await ForwardAsync(context, worker);

        Assert.Equal((ForwarderError.UpstreamConnect, false, true), (result.Error, result.ResponseStarted, result.MayRetry));
        Assert.Empty(body.ToArray());
        Assert.Equal((2, 2), (server.Connections, server.Requests));
    }

    [Fact]
    public async Task ConnectionRefused_IsAConnectFailure_ThatMayBeRetried()
    {
        var worker = Worker(LoopbackTcpServer.ClosedPortUrl("/"));
        var (context, body, _) = Client();

        var result = await ForwardAsync(context, worker);

        Assert.Equal((ForwarderError.UpstreamConnect, 0, false, true), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.Empty(body.ToArray());
    }

    [Fact]
    public async Task Status5xx_WhenTheCallerWillTryAnotherWorker_IsNotRelayed_AndItsConnectionIsClosed()
    {
        var error = Fixtures.Text("openai/error_vllm.json");
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, Json(error, "503 Service Unavailable"), ct);
            return true;
        });
        var worker = Worker(server);
        var (context, body, _) = Client();

        var result = await ForwardAsync(context, worker, retryOnStatus: true);

        Assert.Equal((ForwarderError.UpstreamStatus, 503, false, true), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.Null(result.Usage);
        Assert.Empty(body.ToArray());
        Assert.Equal(0, worker.Connections.IdleCount);
        await server.WaitUntilAsync(s => s.ClosedByClient == 1, "the connection with the unread body was closed");
    }

    [Fact]
    public async Task Status5xx_OnTheLastAttempt_IsRelayedAsItCame_AndNotAccounted()
    {
        var error = Fixtures.Text("openai/error_vllm.json");
        await using var server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, Json(error, "503 Service Unavailable"), ct);
            return true;
        });
        var worker = Worker(server);
        var (context, body, _) = Client();

        var result = await ForwardAsync(context, worker, retryOnStatus: false);

        Assert.Equal((ForwarderError.None, 503, true, false), (result.Error, result.StatusCode, result.ResponseStarted, result.MayRetry));
        Assert.Null(result.Usage);
        Assert.Equal((503, error), (context.Response.StatusCode, body.Text));
        Assert.Equal(1, worker.Connections.IdleCount);
    }

    private WorkerState Worker(LoopbackTcpServer server) => Worker(server.Url("/"));

    private WorkerState Worker(Uri url)
    {
        var worker = new WorkerState(new WorkerModel("w", url, ImmutableArray.Create("m"), 8, 1, ""), _time);
        _workers.Add(worker);
        return worker;
    }

    private (DefaultHttpContext Context, ClientResponseBody Body, ClientLifetime Client) Client()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Path = "/v1/chat/completions";
        context.Request.ContentType = "application/json";
        var body = new ClientResponseBody();
        context.Features.Set<IHttpResponseFeature>(new ClientResponseFeature(body));
        context.Response.Body = body;
        var client = new ClientLifetime();
        context.Features.Set<IHttpRequestLifetimeFeature>(client);
        _clients.Add(client);
        return (context, body, client);
    }

    // One attempt, as ForwardingStage makes it: on `request` (then the caller's to return), else on
    // a request of its own, returned after it.
    private async Task<Forwarded> ForwardAsync(HttpContext context, WorkerState worker, bool stripUsage = false, bool retryOnStatus = false, TimeSpan? activity = null, AotProxy.Limits.StreamBudget budget = default, ProxyRequest? request = null)
    {
        var own = request is null;
        request ??= await RequestAsync(context, stripUsage, activity);
        try
        {
            request.Meter.Start(budget);
            var result = await new Forwarder(_time).ForwardAsync(request, worker, retryOnStatus, span: null, preemption: null)
                .AsTask().WaitAsync(Patient + Patient);
            return new Forwarded(result, request.Meter.Usage, request.Meter.Budget);
        }
        finally
        {
            if (own)
            {
                ProxyRequest.Return(request);
            }
        }
    }

    // A request as the stages before forwarding leave it: RequestJson read into its body, a chat
    // completion of model "m" (a stream when the gateway asked for the usage chunk it strips),
    // PromptEstimate prompt tokens reserved, `activity` (Patient) the longest upstream silence.
    private async Task<ProxyRequest> RequestAsync(HttpContext context, bool stripUsage = false, TimeSpan? activity = null)
    {
        var silence = activity ?? Patient;
        var forwarding = new ForwardingModel(Connect, silence, ModelStreamIdleTimeouts: new Dictionary<string, TimeSpan> { ["m"] = silence }.ToFrozenDictionary());
        var request = ProxyRequest.Rent(context, "req-1", EndpointKind.ChatCompletions, new GatewayView(Snapshots.Create(forwarding: forwarding), WorkerSet.Empty), _time);
        request.Body = await ClientBodyAsync();
        request.Inspected = new InspectedRequest("m", Stream: stripUsage, IncludeUsage: false, 0, stripUsage ? new UsageSplice(0, 0, UsageSpliceKind.AddStreamOptions) : default, default, 0, 0);
        request.Reservation = new TokenReservation(PromptEstimate, 0);
        return request;
    }

    // An attempt's result with what it used (its meter's), as the stages read them.
    private readonly record struct Forwarded(ForwardResult Result, Usage? Usage, AotProxy.Limits.StreamBudget Budget)
    {
        public ForwarderError Error => Result.Error;

        public int StatusCode => Result.StatusCode;

        public TimeSpan? FirstByte => Result.FirstByte;

        public bool ResponseStarted => Result.ResponseStarted;

        public bool EventStream => Result.EventStream;

        public TimeSpan RetryAfter => Result.RetryAfter;

        public bool BudgetCut => Result.BudgetCut;

        public bool MayRetry => Result.MayRetry;

        public bool PushedBack => Result.PushedBack;
    }

    private static async Task<RequestBody> ClientBodyAsync()
    {
        var incoming = new DefaultHttpContext();
        incoming.Request.Body = new MemoryStream(RequestJson);
        incoming.Request.ContentLength = RequestJson.Length;
        var (read, _) = await RequestBody.ReadAsync(incoming.Request, 1 << 20, CancellationToken.None);
        return read!;
    }

    private static string Json(string body, string status = "200 OK") =>
        $"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";

    private static string ChunkedHead(string contentType) => $"HTTP/1.1 200 OK\r\nContent-Type: {contentType}\r\nTransfer-Encoding: chunked\r\n\r\n";

    private static string Chunk(string data) => $"{Encoding.UTF8.GetByteCount(data):x}\r\n{data}\r\n";

    private const string LastChunk = "0\r\n\r\n";

    // The worker keeps the connection open, reading, until the gateway closes it (a reset when
    // the gateway closed with some of the answer unread).
    private static async Task UntilClosedAsync(Stream stream, TaskCompletionSource closed, CancellationToken ct)
    {
        var buffer = new byte[1024];
        try
        {
            while (await stream.ReadAsync(buffer, ct) > 0)
            {
            }
        }
        catch (IOException)
        {
        }

        closed.TrySetResult();
    }

    // A capture's SSE events, each with its blank line.
    private static string[] Events(string sse) => [.. sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e + "\n\n")];

    private static bool IsUsageOnly(string sseEvent)
    {
        var data = sseEvent["data: ".Length..].Trim();
        if (data == "[DONE]")
        {
            return false;
        }

        using var json = JsonDocument.Parse(data);
        return json.RootElement.GetProperty("choices").GetArrayLength() == 0 && json.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object;
    }

    // Events whose delta carries text: the estimate counts one token for each.
    private static long ContentChunks(IEnumerable<string> events) => events.Count(e =>
    {
        var data = e["data: ".Length..].Trim();
        if (data == "[DONE]")
        {
            return false;
        }

        using var json = JsonDocument.Parse(data);
        return json.RootElement.GetProperty("choices").EnumerateArray().Any(c => c.GetProperty("delta").TryGetProperty("content", out var t) && t.GetString() is { Length: > 0 });
    });

    private static Usage UsageOf(string json)
    {
        using var document = JsonDocument.Parse(json);
        var usage = document.RootElement.GetProperty("usage");
        return new Usage(usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());
    }
}
