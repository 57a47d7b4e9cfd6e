using System.Globalization;
using AotProxy.Admission;
using AotProxy.Forwarding;
using AotProxy.Inspection;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// The one place where a proxied request's failure value (ProxyRequest.Failure, with the stage's
// own value beside it) becomes the status and the error the client gets (OpenAI's shape, or
// Anthropic's for /v1/messages). The stages decide;
// only this writes. Sets ProxyRequest.Status; a request without a failure has the status the
// worker's answer went out with.
internal static class ProxyErrors
{
    public const string QueuePositionHeader = "x-gateway-queue-position";
    public const string GrantRateHeader = "x-gateway-grant-rate";

    public static Task WriteAsync(ProxyRequest request, TimeProvider time)
    {
        var written = Write(request, time);
        if (request.Failure != ProxyFailure.None && request.Endpoint == EndpointKind.Messages)
        {
            request.Status = AnthropicError.Status(request.Status); // what OpenAiError answered it with: 529 for a 503
        }

        return written;
    }

    private static Task Write(ProxyRequest request, TimeProvider time)
    {
        var context = request.Context;
        var model = request.Model;
        if (request.Class is not null && !context.Response.HasStarted)
        {
            // Admission ran (it sets the class): the gateway's own answer says where the time went too.
            TimingHeaders.Write(request, time.GetTimestamp(), time);
        }

        switch (request.Failure)
        {
            case ProxyFailure.None:
                request.Status = request.Forward.StatusCode;
                return Task.CompletedTask;
            case ProxyFailure.ClientClosedRequest:
                request.Status = GatewayStatusCodes.Status499ClientClosedRequest;
                return Task.CompletedTask;
            case ProxyFailure.BodyTooLarge:
                request.Status = StatusCodes.Status413PayloadTooLarge;
                return OpenAiError.TooLarge(context, request.Snapshot.Server.MaxRequestBytes);
            case ProxyFailure.InvalidBody:
                request.Status = StatusCodes.Status400BadRequest;
                return InvalidBody(context, request.InspectionError, request.InspectionParam);
            case ProxyFailure.ModelNotAllowed:
                request.Status = StatusCodes.Status403Forbidden;
                return OpenAiError.ModelNotAllowed(context, model);
            case ProxyFailure.ModelNotFound:
                request.Status = StatusCodes.Status404NotFound;
                return OpenAiError.ModelNotFound(context, model);
            case ProxyFailure.ModelUnavailable:
                request.Status = StatusCodes.Status503ServiceUnavailable;
                return OpenAiError.Overloaded(context, $"No worker can take requests for '{model}' right now.", ModelReturnSeconds(request));
            case ProxyFailure.ModelsUnreported:
                request.Status = StatusCodes.Status503ServiceUnavailable;
                return OpenAiError.Overloaded(context, "No worker has reported this model yet, and some have not reported their models (GET /v1/models).", ModelReturnSeconds(request));
            case ProxyFailure.NoModelFits:
                request.Status = StatusCodes.Status400BadRequest;
                return OpenAiError.WriteAsync(context, 400, "invalid_request_error", "no_model_fits", NoModelFitsMessage(request.AutoDemand), "model");
            case ProxyFailure.RateLimited:
                request.Status = StatusCodes.Status429TooManyRequests;
                return RateLimitError.WriteAsync(context, request.Limit, model);
            case ProxyFailure.QuotaExceeded:
                request.Status = StatusCodes.Status429TooManyRequests;
                return QuotaError.WriteAsync(context, request.Limit, model, time);
            case ProxyFailure.LimitStoreDown:
                request.Status = StatusCodes.Status503ServiceUnavailable;
                return OpenAiError.LimitStoreUnavailable(context, request.RetryAfterSeconds);
            case ProxyFailure.AdmissionRefused:
                request.Status = StatusCodes.Status503ServiceUnavailable;
                return request.Shed is { } shed
                    ? OpenAiError.ClassShed(context, ShedMessage(shed, model, request.Class!.Name, request.RetryAfterSeconds), request.RetryAfterSeconds)
                    : AdmissionRefused(context, request, model);
            case ProxyFailure.NoWorker:
                request.Status = StatusCodes.Status503ServiceUnavailable;
                return OpenAiError.Overloaded(context, $"No worker can take requests for '{model}' right now.", 1);
            case ProxyFailure.PacingTimeout:
                request.Status = StatusCodes.Status503ServiceUnavailable;
                return OpenAiError.Overloaded(
                    context,
                    $"Worker {request.Worker} is paced to its upstream's rate limits and had no turn within {request.PacingMaxWait.TotalSeconds:0.###} s; retry after {request.RetryAfterSeconds} s.",
                    request.RetryAfterSeconds);
            default:
                return Upstream(request);
        }
    }

    // A model some worker served may come back with one: Retry-After when a worker could be healthy again.
    private static int ModelReturnSeconds(ProxyRequest request) => Routing.ActiveHealth.ReturnSeconds(request.Snapshot.Health);

    private static string NoModelFitsMessage(AutoDemand demand) =>
        $"model 'auto' found no model you may use that can do {demand.Needs.ToString().ToLowerInvariant()} with {demand.PromptTokens + demand.CompletionTokens} tokens of context (the prompt's estimate and max_tokens); name a model, or lower max_tokens.";

    private static Task InvalidBody(HttpContext context, InspectionError error, string? param) => error switch
    {
        InspectionError.MissingModel => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "missing_required_parameter", "The request has no 'model'.", param),
        InspectionError.MissingMaxTokens => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "missing_required_parameter", "The request needs 'max_tokens', a positive integer (the Messages API requires it).", param),
        InspectionError.InvalidField => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_type", $"'{param}' has the wrong type.", param),
        InspectionError.InvalidText => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_value", $"'{param}' is not valid UTF-8 text (invalid bytes, or an escaped lone surrogate such as \\ud800).", param),
        InspectionError.InvalidForm => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_multipart", $"The multipart/form-data body is malformed: {param}."),
        InspectionError.NotAnObject => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_json", "The request body must be a JSON object."),
        _ => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_json", "The request body is not valid JSON."),
    };

    // Every admission 503 says where the request stood and the grant rate Retry-After (and a
    // queued stream's ETA) came from: headers for clients, and the same in the message.
    private static Task AdmissionRefused(HttpContext context, ProxyRequest request, string model)
    {
        var retryAfter = request.RetryAfterSeconds;
        var classModel = request.Class!;
        var invariant = CultureInfo.InvariantCulture;
        var rate = Math.Round(request.GrantRate, 2);
        if (!context.Response.HasStarted) // queue updates sent the head: the message says it all
        {
            context.Response.Headers[QueuePositionHeader] = request.QueuePosition.ToString(invariant);
            context.Response.Headers[GrantRateHeader] = rate.ToString(invariant);
        }

        var reason = request.Decision switch
        {
            AdmissionDecision.QueueFull => $"The queue for '{model}' is full",
            AdmissionDecision.TimedOut => $"No capacity for '{model}' came free within {classModel.MaxQueueWait.TotalSeconds.ToString("0.###", invariant)} s (class '{classModel.Name}' max_queue_wait)",
            AdmissionDecision.CapacityGuard => $"Class '{classModel.Name}' may use up to {request.Snapshot.Scheduler.UtilizationLimit(classModel, request.Priority):P0} of the workers for '{model}' (max_utilization, scheduler.holdback), and that much is in use",
            _ => $"No worker can take requests for '{model}' right now",
        };
        return OpenAiError.Overloaded(
            context,
            $"{reason}; retry after {retryAfter} s (queue position {request.QueuePosition}, {rate.ToString(invariant)} grants/s over the last 10 s).",
            retryAfter);
    }

    private static string ShedMessage(ShedReason shed, string model, string shedClass, int retryAfter)
    {
        var measured = shed.Key == ShedReason.ErrorRateKey
            ? $"the error rate of the workers for '{model}' over the last {shed.Window.TotalSeconds:0.###} s is {shed.Measured:0.#%}, above the max_error_rate of class '{shed.ProtectedClass}' ({shed.Limit:0.#%})"
            : $"the time to first token of the workers for '{model}' over the last {shed.Window.TotalSeconds:0.###} s is {shed.Measured:0.#}x its baseline, above the ttft_tolerance of class '{shed.ProtectedClass}' ({shed.Limit:0.##}x)";
        return $"Class '{shed.ProtectedClass}' is protected while the fleet degrades, and class '{shedClass}' is shed: {measured}; retry after {retryAfter} s.";
    }

    // The worker failed before any byte of its answer reached the client.
    private static Task Upstream(ProxyRequest request)
    {
        var context = request.Context;
        var worker = request.Worker;
        var error = request.Forward.Error;
        request.Status = error == ForwarderError.UpstreamTimeout ? StatusCodes.Status504GatewayTimeout : StatusCodes.Status502BadGateway;
        return error switch
        {
            // Held back for a retry that then could not happen (budget spent meanwhile).
            ForwarderError.UpstreamStatus => OpenAiError.UpstreamFailed(context, $"Worker {worker} answered HTTP {request.Forward.StatusCode}."),
            ForwarderError.UpstreamTimeout => OpenAiError.UpstreamTimeout(context, $"Worker {worker} did not answer in time."),
            ForwarderError.UpstreamProtocol => OpenAiError.UpstreamFailed(context, $"Worker {worker} sent an invalid HTTP response."),
            ForwarderError.UpstreamResponseBody => OpenAiError.UpstreamFailed(context, $"Worker {worker} broke off its response before any of it reached the client."),
            _ => OpenAiError.UpstreamFailed(context, $"Worker {worker} could not be reached."),
        };
    }
}
