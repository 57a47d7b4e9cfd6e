using System.Diagnostics;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Tracing;

// The request's SERVER span (ProxyRequest.Trace), named as the GenAI conventions name an inference
// span: "{gen_ai.operation.name} {gen_ai.request.model}" once the model is known ("chat" before).
// A client's W3C traceparent/tracestate make it the child of the client's span, and its sampled
// flag decides (the sampler is parent-based); the stages add their events to it where they run.
internal static class RequestTrace
{
    // As the request arrives, on its snapshot. Null when tracing is off: no header is read. The
    // snapshot decides, not the listener alone: a reload that clears otlp_endpoint holds from the
    // next request on, while the provider it replaced still flushes (TraceExport).
    public static Activity? Start(HttpContext context, EndpointKind endpoint, TelemetryModel telemetry)
    {
        if (!telemetry.Tracing || !GatewayTracing.Source.HasListeners())
        {
            return null;
        }

        var headers = context.Request.Headers;
        ActivityContext.TryParse(headers.TraceParent.ToString(), headers.TraceState.ToString(), isRemote: true, out var parent);
        var operation = Operation(endpoint);
        var span = GatewayTracing.Start(operation, ActivityKind.Server, parent);
        if (span is { IsAllDataRequested: true })
        {
            span.SetTag(TraceNames.OperationName, operation);
            span.SetTag(TraceNames.ProviderName, TraceNames.Provider);
        }

        return span;
    }

    // Inspection/InspectionStage, with the model: the span's name and what was asked for.
    public static void Inspected(Activity? span, EndpointKind endpoint, string model, int maxTokens)
    {
        if (span is not { IsAllDataRequested: true })
        {
            return;
        }

        span.DisplayName = $"{Operation(endpoint)} {model}";
        span.SetTag(TraceNames.RequestModel, model);
        if (maxTokens > 0)
        {
            span.SetTag(TraceNames.RequestMaxTokens, maxTokens);
        }
    }

    // DataPlaneHandler's finally, after the record stage: how the request ended, then the span ends.
    public static void Stop(ProxyRequest request)
    {
        var span = request.Trace;
        if (span is null)
        {
            return;
        }

        request.Trace = null;
        if (span.IsAllDataRequested)
        {
            span.SetTag(TraceNames.StatusCode, request.Status);
            if (request.Worker.Length > 0)
            {
                span.SetTag(TraceNames.Worker, request.Worker);
            }

            if (request.Usage is { } usage)
            {
                span.SetTag(TraceNames.InputTokens, usage.PromptTokens);
                span.SetTag(TraceNames.OutputTokens, usage.CompletionTokens);
                span.SetTag(TraceNames.Usage, usage.Estimated ? "estimated" : "reported");
            }

            if (request.FirstByte is { } firstByte)
            {
                span.SetTag(TraceNames.TtftMs, firstByte.TotalMilliseconds);
            }

            // error.type: why the gateway did not pass a worker's answer on, or a worker's 5xx.
            if (request.Failure != ProxyFailure.None)
            {
                span.SetTag(TraceNames.ErrorType, EnumNames.Snake(request.Failure));
            }
            else if (request.Status >= 500)
            {
                span.SetTag(TraceNames.ErrorType, StatusText.Of(request.Status));
            }

            // A server span's 4xx is the client's error, not the server's (OTel HTTP conventions).
            if (request.Status >= 500)
            {
                span.SetStatus(ActivityStatusCode.Error);
            }
        }

        span.Stop();
    }

    public static string Operation(EndpointKind endpoint) => endpoint switch
    {
        EndpointKind.Completions => TraceNames.TextCompletion,
        EndpointKind.Embeddings => TraceNames.Embeddings,
        EndpointKind.Rerank => TraceNames.Rerank,
        EndpointKind.Score => TraceNames.Score,
        EndpointKind.Pooling => TraceNames.Pooling,
        EndpointKind.Classify => TraceNames.Classify,
        EndpointKind.Tokenize => TraceNames.Tokenize,
        EndpointKind.Detokenize => TraceNames.Detokenize,
        _ => TraceNames.Chat,
    };
}
