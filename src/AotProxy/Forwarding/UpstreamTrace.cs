using System.Diagnostics;
using AotProxy.Accounting;
using AotProxy.Http;
using AotProxy.Routing;
using AotProxy.Tracing;

namespace AotProxy.Forwarding;

// One CLIENT span per attempt on a worker, the request span's child: its ids are the traceparent
// the worker gets (Upstream/RequestHeadWriter), so a vLLM that exports its own spans continues
// the trace under it. The forwarder adds the request sent, the response head and the first token.
internal static class UpstreamTrace
{
    public static Activity? Start(ProxyRequest request, WorkerState worker, int attempt)
    {
        if (request.Trace is not { } parent)
        {
            return null;
        }

        var span = GatewayTracing.Start(parent.DisplayName, ActivityKind.Client, parent.Context);
        if (span is { IsAllDataRequested: true })
        {
            var endpoint = worker.Connections.Endpoint;
            span.SetTag(TraceNames.OperationName, RequestTrace.Operation(request.Endpoint));
            span.SetTag(TraceNames.ProviderName, TraceNames.Provider);
            span.SetTag(TraceNames.RequestModel, request.Model);
            span.SetTag(TraceNames.Worker, worker.Name);
            span.SetTag(TraceNames.Attempt, attempt);
            span.SetTag(TraceNames.ServerAddress, endpoint.Host);
            span.SetTag(TraceNames.ServerPort, endpoint.Port);
        }

        return span;
    }

    public static void Stop(Activity? span, in ForwardResult result, Usage? used)
    {
        if (span is null)
        {
            return;
        }

        if (span.IsAllDataRequested)
        {
            if (result.StatusCode > 0)
            {
                span.SetTag(TraceNames.StatusCode, result.StatusCode);
            }

            if (used is { } usage)
            {
                span.SetTag(TraceNames.InputTokens, usage.PromptTokens);
                span.SetTag(TraceNames.OutputTokens, usage.CompletionTokens);
            }

            if (result.Error != ForwarderError.None)
            {
                span.SetTag(TraceNames.ErrorType, EnumNames.Snake(result.Error));
            }
            else if (result.StatusCode >= 400)
            {
                span.SetTag(TraceNames.ErrorType, StatusText.Of(result.StatusCode));
            }

            // A client span's 4xx is an error too (OTel HTTP conventions); a client that went away is not the worker's.
            if (result.Error is not (ForwarderError.None or ForwarderError.ClientAborted) || (result.Error == ForwarderError.None && result.StatusCode >= 400))
            {
                span.SetStatus(ActivityStatusCode.Error);
            }
        }

        span.Stop();
    }
}
