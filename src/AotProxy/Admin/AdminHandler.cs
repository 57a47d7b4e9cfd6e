using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AotProxy.Accounting;
using AotProxy.Admin.Contracts;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace AotProxy.Admin;

// The admin plane's request delegate: method and path to a handler, the admin token's check, and
// the HTTP around them (probes and Prometheus here; what /api/* answers comes from AdminReports,
// what it changes goes through AdminCommands).
internal sealed class AdminHandler(
    ConfigStore config,
    GatewayState state,
    AdmissionController admissions,
    TenantLimits limits,
    UsageRecorder usage,
    GatewayTelemetry telemetry,
    LedgerWriter? ledger,
    ClusterMembership? cluster,
    TimeProvider time,
    ILogger logger,
    SharedWorkerSlots? sharedSlots = null)
{
    private readonly AdminReports _reports = new(config, state, admissions, limits, usage, telemetry.Forwarding, ledger, cluster, time);
    private readonly AdminCommands _commands = new(config, logger, sharedSlots);

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
                ("/ready", true) => ReadyAsync(context),
                ("/metrics", true) => MetricsAsync(context),
                _ => OpenAiError.NotFound(context),
            };
        }

        if (!IsAuthorized(context, state.Current.Config))
        {
            return OpenAiError.WriteAsync(context, 401, "invalid_request_error", "invalid_admin_token", "The admin API needs 'Authorization: Bearer <admin token>'.");
        }

        return (path, isGet, isPost) switch
        {
            ("/api/status", true, _) => JsonAsync(context, 200, _reports.Status(), AdminJsonContext.Default.StatusResponse),
            ("/api/workers", true, _) => JsonAsync(context, 200, _reports.Workers(), AdminJsonContext.Default.WorkerReportArray),
            ("/api/config/reload", _, true) => ReloadAsync(context),
            ("/api/routing/stats", true, _) => JsonAsync(context, 200, _reports.RoutingStats(), AdminJsonContext.Default.RoutingStatsResponse),
            ("/api/queues", true, _) => JsonAsync(context, 200, _reports.Queues(), AdminJsonContext.Default.QueuesResponse),
            ("/api/cluster", true, _) => JsonAsync(context, 200, _reports.Cluster(), AdminJsonContext.Default.ClusterResponse),
            ("/api/tenants", true, _) => JsonAsync(context, 200, _reports.Tenants(), AdminJsonContext.Default.TenantReportArray),
            ("/api/usage", true, _) => UsageAsync(context),
            ("/api/circuit-breaker/stats", true, _) => JsonAsync(context, 200, _reports.Breakers(), AdminJsonContext.Default.BreakerReportArray),
            (_, _, true) when path.StartsWith("/api/workers/", StringComparison.Ordinal) => DrainAsync(context, path),
            (_, _, true) when path.StartsWith("/api/circuit-breaker/", StringComparison.Ordinal) => ResetBreakerAsync(context, path),
            _ => OpenAiError.NotFound(context),
        };
    }

    // 503 only when no worker is routable. A replica that cannot reach the cluster store still
    // serves (store_down says how), so it stays in the load balancer and says "degraded": were it
    // to fail /ready, a Redis outage would take every replica out at once.
    private Task ReadyAsync(HttpContext context)
    {
        var view = state.Current;
        if (!view.Workers.HasRoutableWorker(view.Config.CircuitBreaker))
        {
            return TextAsync(context, 503, "not ready: no routable worker");
        }

        return cluster?.Health switch
        {
            ClusterHealth.StoreUnreachable => TextAsync(context, 200, $"ready, degraded: cluster store unreachable, store_down = {cluster.Model.StoreDown}"),
            ClusterHealth.Resyncing => TextAsync(context, 200, $"ready, degraded: cluster store resyncing (shared decisions wait for every replica's seed), store_down = {cluster.Model.StoreDown}"),
            _ => TextAsync(context, 200, "ready"),
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

    // GET /api/usage: the query checked here, the scan off the epoll thread (AdminReports.UsageAsync).
    private async Task UsageAsync(HttpContext context)
    {
        if (ledger is null)
        {
            await OpenAiError.WriteAsync(context, 404, "invalid_request_error", "ledger_disabled", "The usage ledger is off (ledger.path = \"\").").ConfigureAwait(false);
            return;
        }

        var query = context.Request.Query;
        if (!UsageQuery.TryParse(query["since"], query["until"], query["by"], out var usageQuery, out var error))
        {
            await OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_query", error).ConfigureAwait(false);
            return;
        }

        UsageResponse report;
        var path = ledger.Path;
        var aborted = context.RequestAborted;
        try
        {
            // [store]: every replica's rows, from the shared ledger.
            report = ledger.Shipper is { } shipper
                ? new UsageResponse(usageQuery.ByName, usageQuery.Since, usageQuery.Until, await shipper.Shared.RunAsync(usageQuery, aborted).ConfigureAwait(false))
                : await AdminReports.UsageAsync(path, usageQuery, aborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return; // the client is gone: nobody to answer
        }
        catch (SqliteException ex)
        {
            await OpenAiError.WriteAsync(context, 503, "server_error", "ledger_unavailable", $"The usage ledger {path} cannot be read: {ex.Message}").ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (ledger.Shipper is { } shipper && LedgerShipper.IsStoreFailure(ex))
        {
            await OpenAiError.WriteAsync(context, 503, "server_error", "ledger_unavailable", $"The shared ledger {shipper.Shared.Address} cannot be read: {ex.GetBaseException().Message}").ConfigureAwait(false);
            return;
        }

        await JsonAsync(context, 200, report, AdminJsonContext.Default.UsageResponse).ConfigureAwait(false);
    }

    private async Task ReloadAsync(HttpContext context)
    {
        var status = await _commands.ReloadAsync(context.RequestAborted).ConfigureAwait(false);
        await JsonAsync(context, status.Ok ? 200 : 422, AdminReports.Reload(status), AdminJsonContext.Default.ReloadReport).ConfigureAwait(false);
    }

    // POST /api/workers/{name}/drain | /api/workers/{name}/undrain
    private async Task DrainAsync(HttpContext context, string path)
    {
        var (worker, action, notFound) = Target(context, path, "/api/workers/");
        if (worker is null)
        {
            await notFound!.ConfigureAwait(false);
            return;
        }

        var drain = action == "drain";
        if (!drain && action != "undrain")
        {
            await OpenAiError.NotFound(context).ConfigureAwait(false);
            return;
        }

        await _commands.SetDrainingAsync(worker, drain).ConfigureAwait(false);
        await JsonAsync(context, 200, _reports.Workers(), AdminJsonContext.Default.WorkerReportArray).ConfigureAwait(false);
    }

    // POST /api/circuit-breaker/{name}/reset
    private Task ResetBreakerAsync(HttpContext context, string path)
    {
        var (worker, action, notFound) = Target(context, path, "/api/circuit-breaker/");
        if (worker is null)
        {
            return notFound!;
        }

        if (action != "reset")
        {
            return OpenAiError.NotFound(context);
        }

        _commands.ResetBreaker(worker);
        return JsonAsync(context, 200, _reports.Breakers(), AdminJsonContext.Default.BreakerReportArray);
    }

    // {prefix}{name}/{action}: the named worker and the action, or the 404 being written.
    private (WorkerState? Worker, string Action, Task? NotFound) Target(HttpContext context, string path, string prefix)
    {
        var rest = path.AsSpan(prefix.Length);
        var slash = rest.LastIndexOf('/');
        if (slash <= 0)
        {
            return (null, "", OpenAiError.NotFound(context));
        }

        var name = Uri.UnescapeDataString(rest[..slash].ToString());
        var action = rest[(slash + 1)..].ToString();
        return state.Current.Workers.Find(name) is { } worker
            ? (worker, action, null)
            : (null, action, OpenAiError.WriteAsync(context, 404, "invalid_request_error", "worker_not_found", $"No worker named '{name}'."));
    }

    // The stages' telemetry fills its scrape-time gauges as the registry collects (GatewayTelemetry).
    private Task MetricsAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        return telemetry.WriteAsync(context.Response.Body, context.RequestAborted);
    }

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
