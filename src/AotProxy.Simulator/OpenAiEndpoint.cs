using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Simulator;

// POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/messages and the
// pooling endpoints (rerank, score, pooling, classify): read the body, apply the fault switches,
// validate like vLLM, run the sequence through the engine and write vLLM's bytes. /tokenize and
// /detokenize answer from the "tokenizer" without the engine, as vLLM's API server does.
internal sealed class OpenAiEndpoint(SimulatorOptions options, SimulatorEngine engine, SimulatorStats stats, SimulatorTracing tracing, ILogger logger, CancellationToken shutdown)
{
    // Long enough for loopback sends on a busy 2-core box; only the reset fault pays it.
    private static readonly TimeSpan ResetDrainTime = TimeSpan.FromMilliseconds(100);

    private readonly TimeProvider _time = options.TimeProvider;
    private readonly SimulatedRateLimit? _rateLimit = SimulatedRateLimit.For(options);

    public async Task HandleAsync(HttpContext context, RequestKind kind)
    {
        // A request sees the switches as they were when it arrived. Reading them before the
        // counter moves lets a test flip a switch once RequestsTotal shows its request arrived.
        var faults = options.Faults;
        var fail = faults.Http500Rate is > 0 and var rate && Random.Shared.NextDouble() < rate;
        var hang = faults.Hang;
        var firstByteDelay = faults.FirstByteDelay;
        var resetAfterTokens = faults.ResetAfterTokens;
        var interTokenDelay = faults.InterTokenDelay;
        stats.AddRequest();
        var ct = context.RequestAborted;
        // Stopping the worker cuts its connections, as killing a vLLM process would.
        using var stopping = shutdown.Register(static state => ((HttpContext)state!).Abort(), context);

        ParsedRequest? request;
        string? error;
        var reader = context.Request.BodyReader;
        try
        {
            var read = await HttpResponses.ReadBodyAsync(reader, ct).ConfigureAwait(false);
            if (read is not { } body)
            {
                await HttpResponses.SendErrorAsync(context, StatusCodes.Status413PayloadTooLarge, "BadRequestError", "Request body too large.").ConfigureAwait(false);
                return;
            }

            try
            {
                request = RequestParser.Parse(body.Buffer, kind, options.BlockSize, out error);
            }
            finally
            {
                reader.AdvanceTo(body.Buffer.End);
            }
        }
        catch (Exception ex) when (IsClientGone(ex, ct))
        {
            stats.AddAborted();
            return;
        }

        if (fail)
        {
            stats.AddFaultInjected();
            SimulatorLog.FaultInjected(logger, context.Request.Path, "http500");
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status500InternalServerError, "InternalServerError", "EngineCore encountered an issue. See stack trace (above) for the root cause.").ConfigureAwait(false);
            return;
        }

        if (hang)
        {
            stats.AddFaultInjected();
            SimulatorLog.FaultInjected(logger, context.Request.Path, "hang");
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                stats.AddAborted();
            }

            return;
        }

        if (request is null)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", error!).ConfigureAwait(false);
            return;
        }

        if (request.Model is { } model && !string.Equals(model, options.Model, StringComparison.Ordinal))
        {
            request.Adapter = options.LoraModules.IndexOf(model);
            if (request.Adapter < 0)
            {
                await HttpResponses.SendErrorAsync(context, StatusCodes.Status404NotFound, "NotFoundError", $"The model `{model}` does not exist.", "model").ConfigureAwait(false);
                return;
            }
        }

        var generates = Generates(kind);
        var maxTokens = generates ? request.ResolveMaxTokens(options.DefaultMaxTokens) : 0;
        if ((Validate(request, kind, maxTokens) ?? RefusePriority(request)) is { } invalid)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", invalid).ConfigureAwait(false);
            return;
        }

        // A hosted API checks its limits on a valid request, before any work (OpenAI counts
        // prompt + max_tokens against TPM up front).
        if (_rateLimit?.TryAdmit(request.PromptTokens + maxTokens) is { } limited)
        {
            stats.AddRateLimited();
            await SendRateLimitedAsync(context, _rateLimit, limited, request.PromptTokens + maxTokens).ConfigureAwait(false);
            return;
        }

        // vLLM takes X-Request-Id as its request id when the client (or a gateway) sends one.
        var requestId = context.Request.Headers["X-Request-Id"].ToString();
        if (requestId.Length == 0)
        {
            requestId = $"{Random.Shared.NextInt64():x16}";
        }

        if (kind is RequestKind.Tokenize or RequestKind.Detokenize)
        {
            await RespondTokenizerAsync(context, request).ConfigureAwait(false);
            return;
        }

        var prefix = kind switch
        {
            RequestKind.Chat or RequestKind.Messages => "chatcmpl-", // vLLM's Messages API answers through its chat
            RequestKind.Completion => "cmpl-",
            RequestKind.Responses => "resp_",
            RequestKind.Rerank => "rerank-",
            RequestKind.Score => "score-",
            RequestKind.Pooling => "pool-",
            RequestKind.Classify => "classify-",
            _ => "embd-",
        };
        var exchange = new OpenAiExchange(context, request, kind, prefix + requestId, _time.GetUtcNow().ToUnixTimeSeconds(), ct)
        {
            ResetAfterTokens = resetAfterTokens,
            InterTokenDelay = interTokenDelay,
        };

        if (firstByteDelay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(firstByteDelay, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                stats.AddAborted();
                return;
            }
        }

        var text = !generates ? null : new GeneratedText(request.GenerationSeed(maxTokens), maxTokens, request.IgnoreEos, continuation: kind == RequestKind.Completion);
        if (!engine.TrySubmit(request, text?.PlannedTokens ?? 0, out var sequence))
        {
            // vLLM's ErrorResponse (serving_engine's create_error_response: nested error, code = the status).
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "ServiceUnavailableError", "The server is overloaded: its waiting queue is full (max_num_queued_reqs / max_num_queued_tokens). Retry later.").ConfigureAwait(false);
            return;
        }

        var span = tracing.Start(context);
        RequestOutcome outcome;
        try
        {
            outcome = text is null
                ? await RespondEmbeddingAsync(exchange, sequence).ConfigureAwait(false)
                : request.Stream
                    ? await StreamAsync(exchange, sequence, text).ConfigureAwait(false)
                    : await RespondAsync(exchange, sequence, text).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsClientGone(ex, ct))
        {
            outcome = RequestOutcome.ClientGone;
        }
        finally
        {
            // Frees the slot and blocks unless the sequence already finished.
            engine.Abort(sequence);
            SimulatorTracing.Stop(span, exchange.Id, options.Model, maxTokens, request.PromptTokens, exchange.TokensSent);
        }

        switch (outcome)
        {
            case RequestOutcome.Completed:
                stats.AddFinished(text?.FinishReason ?? FinishReason.Stop);
                break;
            case RequestOutcome.ClientGone:
                stats.AddAborted();
                SimulatorLog.ClientAborted(logger, exchange.Id, exchange.TokensSent);
                break;
            case RequestOutcome.Reset:
                stats.AddReset();
                SimulatorLog.FaultInjected(logger, context.Request.Path, "reset");
                context.Abort();
                break;
            default:
                context.Abort();
                break;
        }
    }

    // The kinds that run a generation (the others pool, score or only tokenize).
    private static bool Generates(RequestKind kind) => kind is RequestKind.Chat or RequestKind.Completion or RequestKind.Responses or RequestKind.Messages;

    private string? Validate(ParsedRequest request, RequestKind kind, int maxTokens)
    {
        var maxModelLen = options.MaxModelLen;
        if (kind == RequestKind.Detokenize)
        {
            return null;
        }

        if (!Generates(kind))
        {
            return request.PromptTokens > maxModelLen
                ? $"This model's maximum context length is {maxModelLen} tokens. However, you requested {request.PromptTokens} tokens in the input for embedding generation. Please reduce the length of the input."
                : null;
        }

        if (maxTokens < 1)
        {
            return $"max_tokens must be at least 1, got {maxTokens}.";
        }

        var total = (long)request.PromptTokens + maxTokens;
        return total > maxModelLen
            ? $"This model's maximum context length is {maxModelLen} tokens. However, you requested {total} tokens ({request.PromptTokens} in the messages, {maxTokens} in the completion). Please reduce the length of the messages or completion."
            : null;
    }

    // A priority the engine cannot honour: vLLM's V0 engine refuses it in add_request, after the
    // request's own checks, with this text (400 BadRequestError). The V1 engine ignores it under
    // fcfs instead (vllm-project/vllm#22997); the simulator keeps the refusal, the stricter case a
    // gateway that sends priorities must be configured for.
    private string? RefusePriority(ParsedRequest request) =>
        request.Priority != 0 && options.SchedulingPolicy != SchedulingPolicy.Priority
            ? $"Got priority {request.Priority} but Priority scheduling is not enabled."
            : null;

    // 429 with OpenAI's body and headers: retry-after in whole seconds (at least 1), and the
    // x-ratelimit-* pair of the limit that refused.
    private Task SendRateLimitedAsync(HttpContext context, SimulatedRateLimit limits, (string Type, long Remaining, TimeSpan RetryAfter) limited, long requested)
    {
        var tokens = limited.Type == "tokens";
        var limit = tokens ? limits.TokensPerMinute : limits.RequestsPerMinute;
        var headers = context.Response.Headers;
        headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(limited.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers[tokens ? "x-ratelimit-limit-tokens" : "x-ratelimit-limit-requests"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers[tokens ? "x-ratelimit-remaining-tokens" : "x-ratelimit-remaining-requests"] = limited.Remaining.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
        {
            RateLimitErrorJson.Write(writer, options.Model, limited.Type, limit, limit - limited.Remaining, tokens ? requested : 1, limited.RetryAfter);
        }

        return HttpResponses.SendAsync(context, StatusCodes.Status429TooManyRequests, HttpResponses.Json, buffer.WrittenMemory);
    }

    private async Task<RequestOutcome> StreamAsync(OpenAiExchange exchange, SimulatedSequence sequence, GeneratedText text)
    {
        var ct = exchange.Aborted;
        var response = exchange.Context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        // Headers leave before the first token (even while queued), as uvicorn sends them; Kestrel's
        // StartAsync only buffers them, the flush puts them on the wire.
        await response.StartAsync(ct).ConfigureAwait(false);
        var pipe = response.BodyWriter;
        if (IsClosed(await pipe.FlushAsync(ct).ConfigureAwait(false)))
        {
            return RequestOutcome.ClientGone;
        }

        using var json = new Utf8JsonWriter(pipe, HttpResponses.JsonOptions);
        var kind = exchange.Kind;
        var chat = kind == RequestKind.Chat;
        var model = options.Model;
        var typed = new SseEventWriter(pipe, json); // the Responses and Messages APIs' named events
        var responses = kind == RequestKind.Responses ? new ResponsesJson(exchange.Id, exchange.Created, model, exchange.Request.ResolveMaxTokens(options.DefaultMaxTokens)) : null;

        if (exchange.ResetAfterTokens == 0)
        {
            return RequestOutcome.Reset;
        }

        while (await sequence.Progress.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (sequence.Progress.TryRead(out var generated))
            {
                while (exchange.TokensSent < generated)
                {
                    if (exchange.TokensSent == 0)
                    {
                        WriteOpening(exchange, pipe, json, typed, responses);
                    }

                    var token = text.Next();
                    var sent = ++exchange.TokensSent;
                    var finish = sent == text.PlannedTokens ? text.FinishReasonText : null;
                    switch (kind)
                    {
                        case RequestKind.Responses:
                            responses!.WriteDelta(typed, token);
                            break;
                        case RequestKind.Messages:
                            MessagesJson.WriteDelta(typed, token);
                            break;
                        default:
                            BeginEvent(pipe, json);
                            if (chat)
                            {
                                ChatCompletionJson.WriteTokenChunk(json, exchange.Id, exchange.Created, model, token, finish);
                            }
                            else
                            {
                                TextCompletionJson.WriteTokenChunk(json, exchange.Id, exchange.Created, model, token, finish);
                            }

                            EndEvent(pipe, json);
                            break;
                    }
                    if (sent == exchange.ResetAfterTokens)
                    {
                        await pipe.FlushAsync(ct).ConfigureAwait(false);
                        // A flush only hands bytes to Kestrel's socket loop, and Abort drops what
                        // it has not sent yet. Real time, not simulated: this waits on the socket.
                        await Task.Delay(ResetDrainTime, ct).ConfigureAwait(false);
                        return RequestOutcome.Reset;
                    }

                    if (exchange.InterTokenDelay > TimeSpan.Zero)
                    {
                        if (IsClosed(await pipe.FlushAsync(ct).ConfigureAwait(false)))
                        {
                            return RequestOutcome.ClientGone;
                        }

                        await Task.Delay(exchange.InterTokenDelay, _time, ct).ConfigureAwait(false);
                    }
                }
            }

            if (IsClosed(await pipe.FlushAsync(ct).ConfigureAwait(false)))
            {
                return RequestOutcome.ClientGone;
            }
        }

        if (sequence.State != SequenceState.Finished)
        {
            return RequestOutcome.EngineStopped;
        }

        if (kind is RequestKind.Responses or RequestKind.Messages)
        {
            // Their streams always end with the usage, and without [DONE].
            if (responses is not null)
            {
                responses.WriteClosing(typed, text.FinishReasonText, exchange.Request.PromptTokens, text.PlannedTokens);
            }
            else
            {
                MessagesJson.WriteClosing(typed, text.FinishReasonText, exchange.Request.PromptTokens, text.PlannedTokens);
            }

            return IsClosed(await pipe.FlushAsync(ct).ConfigureAwait(false)) ? RequestOutcome.ClientGone : RequestOutcome.Completed;
        }

        if (exchange.Request.IncludeUsage)
        {
            BeginEvent(pipe, json);
            if (chat)
            {
                ChatCompletionJson.WriteUsageChunk(json, exchange.Id, exchange.Created, model, exchange.Request.PromptTokens, text.PlannedTokens);
            }
            else
            {
                TextCompletionJson.WriteUsageChunk(json, exchange.Id, exchange.Created, model, exchange.Request.PromptTokens, text.PlannedTokens);
            }

            EndEvent(pipe, json);
        }

        Write(pipe, "data: [DONE]\n\n"u8);
        return IsClosed(await pipe.FlushAsync(ct).ConfigureAwait(false)) ? RequestOutcome.ClientGone : RequestOutcome.Completed;
    }

    private async Task<RequestOutcome> RespondAsync(OpenAiExchange exchange, SimulatedSequence sequence, GeneratedText text)
    {
        if (await WaitForEndAsync(exchange, sequence).ConfigureAwait(false) is { } early)
        {
            return early;
        }

        var content = new StringBuilder(text.PlannedTokens * 6);
        for (var i = 0; i < text.PlannedTokens; i++)
        {
            content.Append(text.Next());
        }

        exchange.TokensSent = text.PlannedTokens;
        var buffer = new ArrayBufferWriter<byte>(1024 + (content.Length * 2));
        using (var json = new Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
        {
            var request = exchange.Request;
            switch (exchange.Kind)
            {
                case RequestKind.Chat:
                    ChatCompletionJson.WriteResponse(json, exchange.Id, exchange.Created, options.Model, content.ToString(), text.FinishReasonText, request.PromptTokens, text.PlannedTokens);
                    break;
                case RequestKind.Responses:
                    ResponsesJson.WriteResponse(json, exchange.Id, exchange.Created, options.Model, request.ResolveMaxTokens(options.DefaultMaxTokens), content.ToString(), text.FinishReasonText, request.PromptTokens, text.PlannedTokens);
                    break;
                case RequestKind.Messages:
                    MessagesJson.WriteResponse(json, exchange.Id, options.Model, content.ToString(), text.FinishReasonText, request.PromptTokens, text.PlannedTokens);
                    break;
                default:
                    TextCompletionJson.WriteResponse(json, exchange.Id, exchange.Created, options.Model, content.ToString(), text.FinishReasonText, request.PromptTokens, text.PlannedTokens);
                    break;
            }
        }

        await HttpResponses.SendAsync(exchange.Context, StatusCodes.Status200OK, HttpResponses.Json, buffer.WrittenMemory).ConfigureAwait(false);
        return RequestOutcome.Completed;
    }

    private async Task<RequestOutcome> RespondEmbeddingAsync(OpenAiExchange exchange, SimulatedSequence sequence)
    {
        if (await WaitForEndAsync(exchange, sequence).ConfigureAwait(false) is { } early)
        {
            return early;
        }

        var buffer = new ArrayBufferWriter<byte>(8 * EmbeddingJson.Dimensions * exchange.Request.InputHashes.Count);
        using (var json = new Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
        {
            if (exchange.Kind == RequestKind.Embedding)
            {
                EmbeddingJson.WriteResponse(json, exchange.Id, exchange.Created, options.Model, exchange.Request.InputHashes, exchange.Request.PromptTokens);
            }
            else
            {
                ScoringJson.Write(json, exchange.Kind, exchange.Id, exchange.Created, options.Model, exchange.Request);
            }
        }

        await HttpResponses.SendAsync(exchange.Context, StatusCodes.Status200OK, HttpResponses.Json, buffer.WrittenMemory).ConfigureAwait(false);
        return RequestOutcome.Completed;
    }

    private Task RespondTokenizerAsync(HttpContext context, ParsedRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + (8 * request.PromptTokens));
        using (var json = new Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
        {
            if (request.Kind == RequestKind.Tokenize)
            {
                TokenizerJson.WriteTokenize(json, request, options.MaxModelLen);
            }
            else
            {
                TokenizerJson.WriteDetokenize(json, request.TokenIds);
            }
        }

        return HttpResponses.SendAsync(context, StatusCodes.Status200OK, HttpResponses.Json, buffer.WrittenMemory);
    }

    // Non-stream: nothing is written until the engine is done, but a reset fault still fires once
    // ResetAfterTokens tokens exist, so the client sees the connection drop mid-generation.
    private static async Task<RequestOutcome?> WaitForEndAsync(OpenAiExchange exchange, SimulatedSequence sequence)
    {
        while (await sequence.Progress.WaitToReadAsync(exchange.Aborted).ConfigureAwait(false))
        {
            while (sequence.Progress.TryRead(out var generated))
            {
                if (exchange.ResetAfterTokens >= 0 && generated >= exchange.ResetAfterTokens)
                {
                    return RequestOutcome.Reset;
                }
            }
        }

        return sequence.State == SequenceState.Finished ? null : RequestOutcome.EngineStopped;
    }

    // What a stream sends before its first token: chat's role chunk, the Responses API's created
    // and added events, the Messages API's message_start and block start; completions nothing.
    private void WriteOpening(OpenAiExchange exchange, PipeWriter pipe, Utf8JsonWriter json, SseEventWriter typed, ResponsesJson? responses)
    {
        switch (exchange.Kind)
        {
            case RequestKind.Chat:
                BeginEvent(pipe, json);
                ChatCompletionJson.WriteRoleChunk(json, exchange.Id, exchange.Created, options.Model);
                EndEvent(pipe, json);
                break;
            case RequestKind.Responses:
                responses!.WriteOpening(typed);
                break;
            case RequestKind.Messages:
                MessagesJson.WriteOpening(typed, exchange.Id, options.Model, exchange.Request.PromptTokens);
                break;
        }
    }

    private static void BeginEvent(PipeWriter pipe, Utf8JsonWriter json)
    {
        Write(pipe, "data: "u8);
        json.Reset();
    }

    private static void EndEvent(PipeWriter pipe, Utf8JsonWriter json)
    {
        json.Flush();
        Write(pipe, "\n\n"u8);
    }

    // With an explicit size hint, as the gateway's BufferCopy (which the simulator cannot reference):
    // while a cut connection is torn down, Kestrel's chunked response writer may answer a hint-less
    // GetSpan() with an empty span (and GetSpan(12) with 16 bytes), which the IBufferWriter Write
    // extension throws ArgumentOutOfRangeException for. RequestAborted fires later, so the
    // client-gone filter did not take it and Kestrel logged an unhandled error, for about half of
    // 200 streams reset mid-stream.
    private static void Write(PipeWriter pipe, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(pipe.GetSpan(bytes.Length));
        pipe.Advance(bytes.Length);
    }

    private static bool IsClosed(FlushResult result) => result.IsCompleted || result.IsCanceled;

    // Once the connection is aborted, whatever a write throws is the client's going: besides
    // the IOException or cancellation, Kestrel may already have completed the response writer
    // (an InvalidOperationException from the next GetSpan), which a loaded machine hits.
    private static bool IsClientGone(Exception ex, CancellationToken aborted) =>
        ex is IOException or BadHttpRequestException || aborted.IsCancellationRequested;
}
