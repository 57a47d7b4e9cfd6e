using AotProxy.Accounting;
using AotProxy.Admin;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Identity;
using AotProxy.Inspection;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Http;

// The data plane's one request delegate: accept -> identify -> inspect -> route -> forward ->
// account. It dispatches on method and path itself; there is no routing middleware.
internal sealed class DataPlaneHandler(
    ConfigStore config,
    WorkerRegistry workers,
    Forwarder forwarder,
    UsageRecorder usage,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger logger)
{
    public Task HandleAsync(HttpContext context)
    {
        var requestId = RequestIds.Ensure(context);
        var request = context.Request;
        var path = request.Path.Value;
        var isPost = HttpMethods.IsPost(request.Method);
        switch (path)
        {
            case "/v1/chat/completions" or "/v1/completions" or "/v1/embeddings":
                return isPost ? ProxyAsync(context, requestId) : OpenAiError.MethodNotAllowed(context);
            case "/v1/models":
                return HttpMethods.IsGet(request.Method) ? ModelsAsync(context) : OpenAiError.MethodNotAllowed(context);
            case "/health":
                context.Response.ContentType = "text/plain";
                return context.Response.WriteAsync("ok", context.RequestAborted);
            default:
                return OpenAiError.NotFound(context);
        }
    }

    private Task ModelsAsync(HttpContext context)
    {
        var tenant = Identify(context, config.Current);
        return tenant is null
            ? OpenAiError.InvalidApiKey(context)
            : ModelListWriter.WriteAsync(context, workers.Current, tenant);
    }

    private async Task ProxyAsync(HttpContext context, string requestId)
    {
        var started = time.GetTimestamp();
        var snapshot = config.Current; // the whole request runs on this snapshot
        var tenant = Identify(context, snapshot);
        if (tenant is null)
        {
            await OpenAiError.InvalidApiKey(context).ConfigureAwait(false);
            Count(string.Empty, string.Empty, context.Response.StatusCode);
            return;
        }

        var (body, tooLarge) = await RequestBody.ReadAsync(context.Request, snapshot.Server.MaxRequestBytes, context.RequestAborted).ConfigureAwait(false);
        if (body is null)
        {
            if (tooLarge)
            {
                await OpenAiError.TooLarge(context, snapshot.Server.MaxRequestBytes).ConfigureAwait(false);
            }

            Count(string.Empty, tenant.Class, tooLarge ? StatusCodes.Status413PayloadTooLarge : 499);
            return;
        }

        using (body)
        {
            var error = RequestInspector.Inspect(body.Span, out var inspected, out var param);
            if (error != InspectionError.None)
            {
                await WriteInspectionErrorAsync(context, error, param).ConfigureAwait(false);
                Count(string.Empty, tenant.Class, StatusCodes.Status400BadRequest);
                return;
            }

            var model = inspected.Model;
            if (!tenant.AllowsModel(model))
            {
                await OpenAiError.ModelNotAllowed(context, model).ConfigureAwait(false);
                Count(workers.Current.Pools.ContainsKey(model) ? model : string.Empty, tenant.Class, StatusCodes.Status403Forbidden);
                return;
            }

            switch (workers.TryPick(model, out var worker))
            {
                case PickOutcome.UnknownModel:
                    // The label stays empty: a client's made-up names must not become series.
                    await OpenAiError.ModelNotFound(context, model).ConfigureAwait(false);
                    Count(string.Empty, tenant.Class, StatusCodes.Status404NotFound);
                    return;
                case PickOutcome.NoRoutableWorker:
                    await OpenAiError.Overloaded(context, $"No worker can take requests for '{model}' right now.", 1).ConfigureAwait(false);
                    Count(model, tenant.Class, StatusCodes.Status503ServiceUnavailable);
                    return;
            }

            if (inspected.NeedsUsageInjection)
            {
                body.Apply(inspected.UsageSplice);
            }

            ForwardResult result;
            worker!.OnRequestStart();
            metrics.ActiveRequests.Inc();
            try
            {
                result = await forwarder.ForwardAsync(
                    context, worker, body.Memory, requestId, inspected.NeedsUsageInjection, snapshot.Forwarding.ActivityTimeout, snapshot.Forwarding.ConnectTimeout).ConfigureAwait(false);
            }
            finally
            {
                metrics.ActiveRequests.Dec();
                worker.OnRequestEnd();
            }

            if (result.Error is not (ForwarderError.None or ForwarderError.ClientAborted))
            {
                HttpLog.UpstreamFailed(logger, requestId, worker.Name, result.Error.ToString());
            }

            if (result.Usage is { } used)
            {
                usage.Record(tenant, used);
            }

            var status = result.StatusCode;
            if (status == 0)
            {
                status = await WriteForwardErrorAsync(context, result.Error, worker.Name).ConfigureAwait(false);
            }

            Count(model, tenant.Class, status);
            metrics.ObserveLatency(model, time.GetElapsedTime(started));
            if (result.FirstByte is { } firstByte)
            {
                metrics.ObserveTtft(model, firstByte);
            }
        }
    }

    private static TenantModel? Identify(HttpContext context, GatewaySnapshot snapshot)
    {
        var authorization = context.Request.Headers.Authorization;
        return authorization.Count == 1
            ? snapshot.ApiKeys.Find(ApiKeyIndex.BearerToken(authorization[0]))
            : null;
    }

    private static Task WriteInspectionErrorAsync(HttpContext context, InspectionError error, string? param) => error switch
    {
        InspectionError.MissingModel => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "missing_required_parameter", "The request has no 'model'.", param),
        InspectionError.InvalidField => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_type", $"'{param}' has the wrong type.", param),
        InspectionError.NotAnObject => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_json", "The request body must be a JSON object."),
        _ => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_json", "The request body is not valid JSON."),
    };

    private static async Task<int> WriteForwardErrorAsync(HttpContext context, ForwarderError error, string worker)
    {
        switch (error)
        {
            case ForwarderError.UpstreamTimeout:
                await OpenAiError.UpstreamTimeout(context, $"Worker {worker} did not answer in time.").ConfigureAwait(false);
                return StatusCodes.Status504GatewayTimeout;
            case ForwarderError.ClientAborted:
                return 499;
            case ForwarderError.UpstreamProtocol:
                await OpenAiError.UpstreamFailed(context, $"Worker {worker} sent an invalid HTTP response.").ConfigureAwait(false);
                return StatusCodes.Status502BadGateway;
            default:
                await OpenAiError.UpstreamFailed(context, $"Worker {worker} could not be reached.").ConfigureAwait(false);
                return StatusCodes.Status502BadGateway;
        }
    }

    private void Count(string model, string tenantClass, int status) =>
        metrics.CountRequest(model, tenantClass, status);
}
