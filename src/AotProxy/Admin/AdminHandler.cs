using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AotProxy.Accounting;
using AotProxy.Admin.Contracts;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Admin;

// The admin plane's request delegate: probes, Prometheus, and the /api/* operator surface.
internal sealed class AdminHandler(
    ConfigStore config,
    WorkerRegistry workers,
    UsageRecorder usage,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger logger)
{
    private static readonly string Version =
        typeof(AdminHandler).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    private readonly long _started = time.GetTimestamp();

    public Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        var isGet = HttpMethods.IsGet(context.Request.Method);
        var isPost = HttpMethods.IsPost(context.Request.Method);
        if (!path.StartsWith("/api/", StringComparison.Ordinal))
        {
            return (path, isGet) switch
            {
                ("/health", true) => TextAsync(context, 200, "ok"),
                ("/ready", true) => workers.HasRoutableWorker()
                    ? TextAsync(context, 200, "ready")
                    : TextAsync(context, 503, "not ready: no routable worker"),
                ("/metrics", true) => MetricsAsync(context),
                _ => OpenAiError.NotFound(context),
            };
        }

        if (!IsAuthorized(context, config.Current))
        {
            return OpenAiError.WriteAsync(context, 401, "invalid_request_error", "invalid_admin_token", "The admin API needs 'Authorization: Bearer <admin token>'.");
        }

        return (path, isGet, isPost) switch
        {
            ("/api/status", true, _) => JsonAsync(context, 200, Status(), AdminJsonContext.Default.StatusResponse),
            ("/api/workers", true, _) => JsonAsync(context, 200, Workers(), AdminJsonContext.Default.WorkerReportArray),
            ("/api/config/reload", _, true) => ReloadAsync(context),
            (_, _, true) when path.StartsWith("/api/workers/", StringComparison.Ordinal) => DrainAsync(context, path),
            _ => OpenAiError.NotFound(context),
        };
    }

    private static bool IsAuthorized(HttpContext context, GatewaySnapshot snapshot)
    {
        var expected = snapshot.Server.AdminTokenSha256;
        if (expected.IsEmpty)
        {
            return true;
        }

        var token = ApiKeyIndex.BearerToken(context.Request.Headers.Authorization.ToString());
        if (token.Length > 1024)
        {
            return false;
        }

        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        ApiKeyIndex.Digest(token, digest);
        return CryptographicOperations.FixedTimeEquals(digest, expected.AsSpan());
    }

    private StatusResponse Status()
    {
        var snapshot = config.Current;
        var set = workers.Current;
        return new StatusResponse(
            Version,
            time.GetElapsedTime(_started).TotalSeconds,
            new ConfigReport(snapshot.Revision, snapshot.Source, snapshot.LoadedAt, ToReport(config.LastReload)),
            new TotalsReport(
                (long)metrics.ActiveRequests.Value,
                usage.PromptTokens,
                usage.CompletionTokens,
                set.Workers.Length,
                set.Workers.Count(w => w.IsRoutable)),
            RuntimeReport.Read());
    }

    private WorkerReport[] Workers() =>
        workers.Current.Workers.Select(w => new WorkerReport(
            w.Name,
            w.Model.Url.ToString(),
            [.. w.Models],
            w.NeedsDiscovery,
            w.Draining,
            w.InFlight,
            w.Model.MaxConcurrency,
            w.Model.Weight,
            w.Requests)).ToArray();

    private Task ReloadAsync(HttpContext context)
    {
        var status = config.Reload();
        return JsonAsync(context, status.Ok ? 200 : 422, ToReport(status), AdminJsonContext.Default.ReloadReport);
    }

    private Task DrainAsync(HttpContext context, string path)
    {
        // /api/workers/{name}/drain | /api/workers/{name}/undrain
        var rest = path.AsSpan("/api/workers/".Length);
        var slash = rest.LastIndexOf('/');
        if (slash <= 0)
        {
            return OpenAiError.NotFound(context);
        }

        var action = rest[(slash + 1)..];
        var drain = action.SequenceEqual("drain");
        if (!drain && !action.SequenceEqual("undrain"))
        {
            return OpenAiError.NotFound(context);
        }

        var name = Uri.UnescapeDataString(rest[..slash].ToString());
        var worker = workers.Current.Find(name);
        if (worker is null)
        {
            return OpenAiError.WriteAsync(context, 404, "invalid_request_error", "worker_not_found", $"No worker named '{name}'.");
        }

        worker.Draining = drain;
        RoutingLog.DrainChanged(logger, name, drain ? "draining" : "undrained");
        return JsonAsync(context, 200, Workers(), AdminJsonContext.Default.WorkerReportArray);
    }

    private async Task MetricsAsync(HttpContext context)
    {
        RefreshStateGauges();
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await metrics.WriteAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    // Gauges that mirror state are set at scrape time; series of workers or models that are
    // gone are dropped so dashboards don't show ghosts.
    private void RefreshStateGauges()
    {
        var set = workers.Current;
        foreach (var labels in metrics.WorkerInFlight.GetAllLabelValues().ToArray())
        {
            if (set.Find(labels[0]) is null)
            {
                metrics.WorkerInFlight.RemoveLabelled(labels);
            }
        }

        foreach (var worker in set.Workers)
        {
            metrics.WorkerInFlight.WithLabels(worker.Name).Set(worker.InFlight);
        }

        foreach (var labels in metrics.HealthyWorkers.GetAllLabelValues().ToArray())
        {
            if (!set.Pools.ContainsKey(labels[0]))
            {
                metrics.HealthyWorkers.RemoveLabelled(labels);
            }
        }

        foreach (var (model, pool) in set.Pools)
        {
            metrics.HealthyWorkers.WithLabels(model).Set(pool.Workers.Count(w => w.IsRoutable));
        }
    }

    private static ReloadReport ToReport(ReloadStatus status) =>
        new(status.At, status.Ok, status.Revision, status.Errors.Select(e => e.ToString()).ToArray());

    private static Task TextAsync(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain";
        return context.Response.WriteAsync(text, context.RequestAborted);
    }

    private static Task JsonAsync<T>(HttpContext context, int status, T value, JsonTypeInfo<T> typeInfo)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        using (var json = new Utf8JsonWriter(context.Response.BodyWriter, new JsonWriterOptions { Indented = true }))
        {
            JsonSerializer.Serialize(json, value, typeInfo);
        }

        return context.Response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }
}
