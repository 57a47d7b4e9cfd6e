using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AotProxy.Accounting;
using AotProxy.Admin.Contracts;
using AotProxy.Admin.Dashboard;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tenancy;
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
    SharedWorkerSlots? sharedSlots = null,
    TenantDirectory? tenants = null,
    AdminChanges? changes = null) : IAsyncDisposable
{
    // The caller while no admin token is configured: the API is open (on loopback by default).
    private static readonly AdminTokenModel OpenAccess = new(AdminTokenModel.OpenActor, [], AdminRole.Admin);

    private readonly AdminReports _reports = new(config, state, admissions, limits, usage, telemetry.Forwarding, ledger, cluster, time);
    private readonly AdminCommands _commands = new(config, logger, sharedSlots);
    private readonly TenantEndpoints _tenants = new(tenants, time);
    private readonly AdminChanges _changes = changes ?? new AdminChanges();
    private readonly DashboardPage _page = DashboardPage.Load();
    private DashboardFeed? _feed;

    private DashboardFeed Feed => _feed ?? throw new InvalidOperationException("The admin plane's event feed was not started (AdminHandler.Start).");

    // GatewayHost's wiring, once, before the listener binds: the workers' history fills from the
    // start, so the sparklines have minutes behind them when the page opens.
    public void Start() => _feed = new DashboardFeed(_reports, telemetry.Requests, telemetry.Errors, _changes, () => _tenants.Keys(), ledger, time, logger);

    // Shutdown, before the listener stops: the event streams end at once.
    public void CloseStreams() => _feed?.Close();

    public async ValueTask DisposeAsync()
    {
        if (_feed is not null)
        {
            await _feed.DisposeAsync().ConfigureAwait(false);
        }
    }

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
                ("/dashboard", true) => _page.WriteAsync(context),
                _ => OpenAiError.NotFound(context),
            };
        }

        if (Authorize(context, state.Current.Config) is not { } token)
        {
            return OpenAiError.WriteAsync(context, 401, "invalid_request_error", "invalid_admin_token", "The admin API needs 'Authorization: Bearer <admin token>'.");
        }

        if (!isGet && token.Role != AdminRole.Admin)
        {
            return OpenAiError.WriteAsync(context, 403, "invalid_request_error", "permission_denied", $"Admin token '{token.Id}' is read-only: it may GET, and {context.Request.Method} needs a token with role \"admin\".");
        }

        if (path.StartsWith("/api/tenants/", StringComparison.Ordinal))
        {
            return Changes(isGet, TenantAsync(context, path, token.Id));
        }

        return Changes(isGet, (path, isGet, isPost) switch
        {
            ("/api/events", true, _) => Feed.StreamAsync(context),
            ("/api/tenants", _, true) => _tenants.CreateTenantAsync(context, token.Id),
            ("/api/audit", true, _) => _tenants.AuditAsync(context),
            ("/api/status", true, _) => JsonAsync(context, 200, _reports.Status(), AdminJsonContext.Default.StatusResponse),
            ("/api/workers", true, _) => JsonAsync(context, 200, _reports.Workers(), AdminJsonContext.Default.WorkerReportArray),
            ("/api/config/reload", _, true) => ReloadAsync(context, token.Id),
            ("/api/routing/stats", true, _) => JsonAsync(context, 200, _reports.RoutingStats(), AdminJsonContext.Default.RoutingStatsResponse),
            ("/api/queues", true, _) => JsonAsync(context, 200, _reports.Queues(), AdminJsonContext.Default.QueuesResponse),
            ("/api/cluster", true, _) => JsonAsync(context, 200, _reports.Cluster(), AdminJsonContext.Default.ClusterResponse),
            ("/api/tenants", true, _) => JsonAsync(context, 200, _reports.Tenants(), AdminJsonContext.Default.TenantReportArray),
            ("/api/usage", true, _) => UsageAsync(context),
            ("/api/circuit-breaker/stats", true, _) => JsonAsync(context, 200, _reports.Breakers(), AdminJsonContext.Default.BreakerReportArray),
            (_, _, true) when path.StartsWith("/api/workers/", StringComparison.Ordinal) => DrainAsync(context, path, token.Id),
            (_, _, true) when path.StartsWith("/api/circuit-breaker/", StringComparison.Ordinal) => ResetBreakerAsync(context, path, token.Id),
            _ => OpenAiError.NotFound(context),
        });
    }

    // A write (tenant, key, drain, reset, reload) may change what the live console shows: its
    // streams get a message once it is done, whatever it answered.
    private Task Changes(bool isGet, Task handled) => isGet ? handled : PulseAfterAsync(handled);

    private async Task PulseAfterAsync(Task handled)
    {
        try
        {
            await handled.ConfigureAwait(false);
        }
        finally
        {
            _changes.Pulse();
        }
    }

    // 503 when no worker is routable, or the tenant store has not been read. A replica that
    // cannot reach the cluster store still serves (store_down says how), so it stays in the load
    // balancer and says "degraded": were it to fail /ready, a Redis outage would take every
    // replica out at once.
    private Task ReadyAsync(HttpContext context)
    {
        var view = state.Current;
        if (!view.Workers.HasRoutableWorker(view.Config.CircuitBreaker))
        {
            return TextAsync(context, 503, "not ready: no routable worker");
        }

        // The tenant store not read since startup (or in conflict with the file): keys issued
        // through it would be refused here, so the load balancer keeps this replica out.
        if (tenants?.NotReady is { } notReady)
        {
            return TextAsync(context, 503, "not ready: " + notReady);
        }

        return cluster?.Health switch
        {
            ClusterHealth.StoreUnreachable => TextAsync(context, 200, $"ready, degraded: cluster store unreachable, store_down = {cluster.Model.StoreDown}"),
            ClusterHealth.Resyncing => TextAsync(context, 200, $"ready, degraded: cluster store resyncing (shared decisions wait for every replica's seed), store_down = {cluster.Model.StoreDown}"),
            _ => TextAsync(context, 200, "ready"),
        };
    }

    // The caller's admin token (server.admin_token_sha256 is "default", [[admin_tokens]] the
    // others), compared in constant time with each; null: none matches. OpenAccess while none is
    // configured.
    private static AdminTokenModel? Authorize(HttpContext context, GatewaySnapshot snapshot)
    {
        var tokens = snapshot.AdminTokens;
        if (tokens.IsEmpty)
        {
            return OpenAccess;
        }

        var token = ApiKeyIndex.BearerToken(context.Request.Headers.Authorization.ToString());
        if (token.Length > 1024)
        {
            return null;
        }

        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        ApiKeyIndex.Digest(token, digest);
        AdminTokenModel? match = null;
        foreach (var candidate in tokens)
        {
            if (CryptographicOperations.FixedTimeEquals(digest, candidate.Sha256.AsSpan()))
            {
                match = candidate;
            }
        }

        return match;
    }

    // /api/tenants/{name}[/keys[/{id}[/rotate]]]: the names unescaped.
    private Task TenantAsync(HttpContext context, string path, string actor)
    {
        var parts = path["/api/tenants/".Length..].Split('/');
        if (parts.Any(p => p.Length == 0))
        {
            return OpenAiError.NotFound(context);
        }

        var name = Uri.UnescapeDataString(parts[0]);
        var method = context.Request.Method;
        return (parts.Length, parts.Length > 1 ? parts[1] : "", parts.Length > 3 ? parts[3] : "") switch
        {
            (1, _, _) when HttpMethods.IsPatch(method) => _tenants.UpdateTenantAsync(context, name, actor),
            (1, _, _) when HttpMethods.IsDelete(method) => _tenants.DeleteTenantAsync(context, name, actor),
            (2, "keys", _) when HttpMethods.IsGet(method) => _tenants.ListKeysAsync(context, name),
            (2, "keys", _) when HttpMethods.IsPost(method) => _tenants.IssueKeyAsync(context, name, actor),
            (3, "keys", _) when HttpMethods.IsDelete(method) => _tenants.RevokeKeyAsync(context, name, Uri.UnescapeDataString(parts[2]), actor),
            (4, "keys", "rotate") when HttpMethods.IsPost(method) => _tenants.RotateKeyAsync(context, name, Uri.UnescapeDataString(parts[2]), actor),
            _ => OpenAiError.NotFound(context),
        };
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

    private async Task ReloadAsync(HttpContext context, string actor)
    {
        var status = await _commands.ReloadAsync(context.RequestAborted).ConfigureAwait(false);
        await _tenants.RecordAsync("config.reload", config.Path ?? "", actor, status.Ok ? $"applied revision {status.Revision}" : $"rejected: {status.Errors.Length} errors").ConfigureAwait(false);
        await JsonAsync(context, status.Ok ? 200 : 422, AdminReports.Reload(status), AdminJsonContext.Default.ReloadReport).ConfigureAwait(false);
    }

    // POST /api/workers/{name}/drain | /api/workers/{name}/undrain
    private async Task DrainAsync(HttpContext context, string path, string actor)
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
        await _tenants.RecordAsync(drain ? "worker.drain" : "worker.undrain", worker.Name, actor).ConfigureAwait(false);
        await JsonAsync(context, 200, _reports.Workers(), AdminJsonContext.Default.WorkerReportArray).ConfigureAwait(false);
    }

    // POST /api/circuit-breaker/{name}/reset
    private async Task ResetBreakerAsync(HttpContext context, string path, string actor)
    {
        var (worker, action, notFound) = Target(context, path, "/api/circuit-breaker/");
        if (worker is null)
        {
            await notFound!.ConfigureAwait(false);
            return;
        }

        if (action != "reset")
        {
            await OpenAiError.NotFound(context).ConfigureAwait(false);
            return;
        }

        _commands.ResetBreaker(worker);
        await _tenants.RecordAsync("breaker.reset", worker.Name, actor).ConfigureAwait(false);
        await JsonAsync(context, 200, _reports.Breakers(), AdminJsonContext.Default.BreakerReportArray).ConfigureAwait(false);
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

    internal static Task JsonAsync<T>(HttpContext context, int status, T value, JsonTypeInfo<T> typeInfo)
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
