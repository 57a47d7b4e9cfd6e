using System.Diagnostics;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Tracing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Identity;

// The identify stage: the request's caller (tenant, class, priority) from its key, JWT or trusted
// headers, on the request's snapshot. A failure is a value (the 401 is OpenAiError.Unidentified's),
// logged at most once a second: a client can send bad credentials at any rate, and 20,000 of them
// wrote 20 MB of log (issue 14).
internal sealed class IdentityStage(TimeProvider time, ILogger logger)
{
    private readonly LogThrottle _unidentifiedLog = new(TimeSpan.FromSeconds(1), time);

    // For a proxied request: true with ProxyRequest.Caller set.
    public bool Identify(ProxyRequest request, out IdentifyFailure failure)
    {
        // Anthropic's clients send their key as x-api-key: accepted on /v1/messages only.
        var identified = Identify(request.Context, request.Snapshot, request.RequestId, apiKeyHeader: request.Endpoint == EndpointKind.Messages);
        request.Caller = identified.Caller;
        failure = identified.Failure;
        if (request.Trace is { IsAllDataRequested: true } span)
        {
            span.AddEvent(new ActivityEvent(TraceNames.IdentifyEvent));
            if (identified.IsIdentified)
            {
                span.SetTag(TraceNames.Tenant, identified.Caller.Tenant.Name);
                span.SetTag(TraceNames.Class, identified.Caller.Class.Name);
            }
        }

        return identified.IsIdentified;
    }

    public IdentifyResult Identify(HttpContext context, GatewaySnapshot snapshot, string requestId, bool apiKeyHeader = false)
    {
        var identified = snapshot.Callers.Identify(context, time, apiKeyHeader);
        if (!identified.IsIdentified && _unidentifiedLog.TryEnter(out var suppressed))
        {
            HttpLog.Unidentified(logger, requestId, identified.Failure, suppressed);
        }

        return identified;
    }
}
