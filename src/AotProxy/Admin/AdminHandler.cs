using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AotProxy.Accounting;
using AotProxy.Admin.Contracts;
using AotProxy.Admission;
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

// The admin plane's request delegate: probes, Prometheus, and the /api/* operator surface.
internal sealed class AdminHandler(
    ConfigStore config,
    GatewayState state,
    AdmissionController admissions,
    TenantLimits limits,
    UsageRecorder usage,
    GatewayTelemetry telemetry,
    LedgerWriter? ledger,
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
                ("/ready", true) => state.Current is var view && view.Workers.HasRoutableWorker(view.Config.CircuitBreaker)
                    ? TextAsync(context, 200, "ready")
                    : TextAsync(context, 503, "not ready: no routable worker"),
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
            ("/api/status", true, _) => JsonAsync(context, 200, Status(), AdminJsonContext.Default.StatusResponse),
            ("/api/workers", true, _) => JsonAsync(context, 200, Workers(), AdminJsonContext.Default.WorkerReportArray),
            ("/api/config/reload", _, true) => ReloadAsync(context),
            ("/api/routing/stats", true, _) => JsonAsync(context, 200, RoutingStats(), AdminJsonContext.Default.RoutingStatsResponse),
            ("/api/queues", true, _) => JsonAsync(context, 200, Queues(), AdminJsonContext.Default.QueuesResponse),
            ("/api/tenants", true, _) => JsonAsync(context, 200, Tenants(), AdminJsonContext.Default.TenantReportArray),
            ("/api/usage", true, _) => UsageAsync(context),
            ("/api/circuit-breaker/stats", true, _) => JsonAsync(context, 200, Breakers(), AdminJsonContext.Default.BreakerReportArray),
            (_, _, true) when path.StartsWith("/api/workers/", StringComparison.Ordinal) => DrainAsync(context, path),
            (_, _, true) when path.StartsWith("/api/circuit-breaker/", StringComparison.Ordinal) => ResetBreakerAsync(context, path),
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
        var view = state.Current;
        var snapshot = view.Config;
        var set = view.Workers;
        return new StatusResponse(
            Version,
            time.GetElapsedTime(_started).TotalSeconds,
            new ConfigReport(snapshot.Revision, snapshot.Source, snapshot.LoadedAt, ToReport(config.LastReload)),
            new TotalsReport(
                telemetry.Forwarding.ActiveRequests,
                usage.PromptTokens,
                usage.CompletionTokens,
                set.Workers.Length,
                set.Workers.Count(view.IsRoutable)),
            RuntimeReport.Read(),
            ledger is null ? null : new LedgerReport(ledger.Path, ledger.Written, ledger.Dropped, ledger.Pending));
    }

    // GET /api/usage?since=2026-11-01&until=...&by=tenant|model|day: the ledger, summed as
    // `aotproxy usage` prints it. Read on a connection of its own: SQLite in WAL mode lets it run
    // beside the writer. The scan blocks its thread (~1.3 s over 1M rows, perf/RESULTS.md), so it
    // runs on the thread pool, never on the epoll thread this handler was called on, which the
    // data plane's sockets share (Gateway/EventLoop.cs).
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

        UsageRow[] rows;
        var path = ledger.Path;
        var aborted = context.RequestAborted;
        try
        {
            rows = await Task.Run(
                () =>
                {
                    using var connection = LedgerDatabase.Open(path, create: false);
                    return usageQuery.Run(connection, aborted);
                },
                aborted).ConfigureAwait(false);
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

        await JsonAsync(context, 200, new UsageResponse(usageQuery.ByName, usageQuery.Since, usageQuery.Until, rows), AdminJsonContext.Default.UsageResponse).ConfigureAwait(false);
    }

    private QueuesResponse Queues()
    {
        var now = time.GetTimestamp();
        var frequency = (double)time.TimestampFrequency;
        var models = admissions.Models.OrderBy(m => m.Model, StringComparer.Ordinal).Select(m => new ModelQueueReport(
            m.Model,
            m.Slots.Capacity,
            m.Slots.Used,
            m.Waiting,
            m.Grants.PerSecond(now / time.TimestampFrequency),
            m.AgingInterval(now) / frequency,
            [.. m.Levels.Select(level => new QueueLevelReport(level.Index, level.Waiting, level.OldestWait(now) / frequency, m.Slots.Guaranteed(level.Index), m.Slots.UsedBy(level.Index)))],
            Accounts(m.Classes),
            Accounts(m.Tenants)));
        var snapshot = state.Current.Config;
        var utcNow = time.GetUtcNow();
        var windows = snapshot.TimeWindows.Select(w => w.ActiveUntil(utcNow) is { } until
            ? new TimeWindowReport(w.Name, w.Class, w.Schedule.Text, w.Schedule.Zone.Id, Duration.Format(w.Duration), true, until)
            : new TimeWindowReport(w.Name, w.Class, w.Schedule.Text, w.Schedule.Zone.Id, Duration.Format(w.Duration), false, null));
        return new QueuesResponse(snapshot.Scheduler.Policy, [.. models], [.. windows]);
    }

    private TenantReport[] Tenants()
    {
        var accounts = admissions.Models.SelectMany(m => m.Tenants).ToLookup(a => a.Name, StringComparer.Ordinal);
        return [.. state.Current.Config.Tenants.Select(t =>
        {
            var used = usage.Of(t.Name);
            var limited = limits.Of(t.Name);
            var budget = limited?.Budget;
            var month = budget?.Month;
            return new TenantReport(
                t.Name,
                t.Class,
                t.Weight,
                [.. t.Models],
                t.Rpm,
                t.Tpm,
                t.MaxInFlight,
                accounts[t.Name].Sum(a => a.Waiting),
                accounts[t.Name].Sum(a => a.InFlight),
                used?.Requests ?? 0,
                used?.PromptTokens ?? 0,
                used?.CompletionTokens ?? 0,
                used?.CachedPromptTokens ?? 0,
                used?.ReasoningTokens ?? 0,
                used?.EstimatedRequests ?? 0,
                usage.MonthTokens(t.Name),
                limited?.Requests?.Remaining,
                limited?.Tokens?.Remaining,
                limited?.InFlight ?? 0,
                t.Budget?.Tokens ?? 0,
                t.Budget?.MonthlyTokens ?? 0,
                BudgetAmount.Usd(t.Budget?.Nanos ?? 0),
                BudgetAmount.Usd(t.Budget?.MonthlyNanos ?? 0),
                Left(budget, BudgetKind.Tokens),
                Left(budget, BudgetKind.MonthlyTokens),
                Usd(Left(budget, BudgetKind.Usd)),
                Usd(Left(budget, BudgetKind.MonthlyUsd)),
                budget?.SpentTokens,
                month?.Tokens,
                Usd(budget?.SpentNanos),
                Usd(month?.Nanos));
        })];
    }

    private static long? Left(TenantBudgetState? budget, BudgetKind kind) => budget?.Remaining(kind);

    private static decimal? Usd(long? nanos) => nanos is { } value ? BudgetAmount.Usd(value) : null;

    private static AccountReport[] Accounts(IEnumerable<FairShareAccount> accounts) =>
        [.. accounts.OrderBy(a => a.Name, StringComparer.Ordinal).Select(a => new AccountReport(a.Name, a.Waiting, a.InFlight, a.Counter))];

    private WorkerReport[] Workers()
    {
        var view = state.Current;
        var snapshot = view.Config;
        var second = time.GetTimestamp() / time.TimestampFrequency;
        return view.Workers.Workers.Select(w => new WorkerReport(
            w.Name,
            w.Model.Url.ToString(),
            [.. w.Models],
            w.NeedsDiscovery,
            w.IsRoutable(snapshot.CircuitBreaker),
            w.Draining,
            EnumNames.Snake(w.Health.State),
            EnumNames.Snake(w.Breaker.State),
            w.InFlight,
            w.Model.MaxConcurrency,
            w.Slots(snapshot.Scheduler, snapshot.Routing.StaleAfter),
            w.SlotsTaken,
            w.Model.Weight,
            w.Requests,
            Scrape(w, snapshot.Routing.StaleAfter),
            w.Errors.Rate(second),
            Sample(w.Ttft.Seconds),
            Sample(w.TimePerOutputToken.Seconds),
            Pacing(w.Pacer))).ToArray();
    }

    private static PacingReport? Pacing(UpstreamPacer? pacer)
    {
        if (pacer is null)
        {
            return null;
        }

        var limits = pacer.Limits;
        var (requests, tokens) = pacer.WindowUsage();
        return new PacingReport(
            limits.Rpm,
            limits.Tpm,
            limits.RequestLimit,
            limits.TokenLimit,
            limits.MaxWait.TotalSeconds,
            pacer.Granted,
            pacer.Waits,
            pacer.WaitTime.TotalSeconds,
            pacer.Timeouts,
            pacer.Waiting,
            requests,
            tokens);
    }

    private ScrapeReport Scrape(WorkerState worker, TimeSpan staleAfter)
    {
        if (worker.Scraped is not { } scraped)
        {
            return new ScrapeReport(worker.ScrapeStatus, false, null, null, null, null, null);
        }

        var m = scraped.Metrics;
        return new ScrapeReport(
            worker.ScrapeStatus,
            worker.IsFresh(staleAfter),
            time.GetElapsedTime(scraped.At).TotalSeconds,
            m.Has(VllmMetricFields.Running) ? m.Running : null,
            m.Has(VllmMetricFields.Waiting) ? m.Waiting : null,
            m.Has(VllmMetricFields.KvCacheUsage) ? m.KvCacheUsage : null,
            m.Has(VllmMetricFields.PrefixCacheQueries | VllmMetricFields.PrefixCacheHits) && m.PrefixCacheQueries > 0 ? m.PrefixCacheHits / m.PrefixCacheQueries : null);
    }

    private RoutingStatsResponse RoutingStats() => RoutingStats(state.Current);

    private static RoutingStatsResponse RoutingStats(GatewayView view) => new(
        view.Config.Routing.Strategy,
        view.Workers.Workers.Select(w =>
        {
            var byStrategy = new Dictionary<string, long>(StringComparer.Ordinal);
            for (var i = 0; i < RoutingStrategyNames.All.Length; i++)
            {
                byStrategy[RoutingStrategyNames.All[i]] = w.Decisions(i);
            }

            return new RoutingWorkerStats(w.Name, byStrategy.Values.Sum(), byStrategy);
        }).ToArray());

    private BreakerReport[] Breakers() =>
        state.Current.Workers.Workers.Select(w => new BreakerReport(
            w.Name,
            EnumNames.Snake(w.Breaker.State),
            w.Breaker.ConsecutiveFailures,
            w.Breaker.Failures,
            w.Breaker.TimesOpened,
            w.Breaker.LastTransition)).ToArray();

    private static double? Sample(double seconds) => seconds > 0 ? seconds : null;

    // The reload reads and validates the file and rebuilds the worker set: blocking work, on the
    // thread pool, not the epoll thread (see UsageAsync). ConfigStore still runs one at a time.
    private async Task ReloadAsync(HttpContext context)
    {
        var status = await Task.Run(config.Reload, context.RequestAborted).ConfigureAwait(false);
        await JsonAsync(context, status.Ok ? 200 : 422, ToReport(status), AdminJsonContext.Default.ReloadReport).ConfigureAwait(false);
    }

    // POST /api/workers/{name}/drain | /api/workers/{name}/undrain
    private Task DrainAsync(HttpContext context, string path)
    {
        var (worker, action, notFound) = Target(context, path, "/api/workers/");
        if (worker is null)
        {
            return notFound!;
        }

        var drain = action == "drain";
        if (!drain && action != "undrain")
        {
            return OpenAiError.NotFound(context);
        }

        worker.Draining = drain; // the worker tells admission what it offers now
        RoutingLog.DrainChanged(logger, worker.Name, drain ? "draining" : "undrained");
        return JsonAsync(context, 200, Workers(), AdminJsonContext.Default.WorkerReportArray);
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

        worker.Breaker.Reset();
        RoutingLog.BreakerChanged(logger, worker.Name, BreakerState.Closed);
        return JsonAsync(context, 200, Breakers(), AdminJsonContext.Default.BreakerReportArray);
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
