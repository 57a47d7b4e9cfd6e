using AotProxy.Accounting;
using AotProxy.Admin.Contracts;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Gateway;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Routing.Policies;

namespace AotProxy.Admin;

// The admin API's reports: functions from the gateway's state now to the JSON records of
// Admin/Contracts, which AdminHandler writes.
internal sealed class AdminReports(
    ConfigStore config,
    GatewayState state,
    AdmissionController admissions,
    TenantLimits limits,
    UsageRecorder usage,
    ForwardingTelemetry forwarding,
    LedgerWriter? ledger,
    ClusterMembership? cluster,
    TimeProvider time)
{
    private readonly long _started = time.GetTimestamp();

    public StatusResponse Status()
    {
        var view = state.Current;
        var snapshot = view.Config;
        var set = view.Workers;
        return new StatusResponse(
            GatewayVersion.Text,
            time.GetElapsedTime(_started).TotalSeconds,
            new ConfigReport(snapshot.Revision, snapshot.Source, snapshot.LoadedAt, Reload(config.LastReload)),
            new TotalsReport(
                forwarding.ActiveRequests,
                usage.PromptTokens,
                usage.CompletionTokens,
                set.Workers.Length,
                set.Workers.Count(view.IsRoutable)),
            RuntimeReport.Read(),
            ledger is null ? null : new LedgerReport(ledger.Path, ledger.Written, ledger.Dropped, ledger.Pending));
    }

    public ClusterResponse Cluster()
    {
        if (cluster is null)
        {
            return new ClusterResponse("alone", null, null, false, null, null, null, null, 0, 0, state.Current.Config.Digest, null, 0, 0, null, []);
        }

        var view = cluster.Current;
        var health = cluster.Health;
        var model = cluster.Model;
        var members = view.Members.Select(m => new ClusterMemberReport(
            m.Name,
            m.Name == cluster.Name,
            m.Version,
            m.Digest,
            m.Revision,
            view.Differs(m),
            m.InFlight,
            m.Started,
            m.LastSeen,
            m.ExpiresIn.TotalSeconds,
            m.StoreLatency.TotalMilliseconds));
        return new ClusterResponse(
            "cluster",
            cluster.Name,
            cluster.Store.ToString(),
            health != ClusterHealth.Healthy,
            health switch
            {
                ClusterHealth.StoreUnreachable => "store_unreachable",
                ClusterHealth.Resyncing => "resyncing",
                _ => null,
            },
            model.StoreDown,
            view.Error,
            cluster.DegradedSince,
            view.StoreFailures,
            view.StoreLatency.TotalMilliseconds,
            state.Current.Config.Digest,
            view.MajorityDigest,
            model.Heartbeat.TotalSeconds,
            model.MemberTtl.TotalSeconds,
            view.MembersAt,
            [.. members]);
    }

    public QueuesResponse Queues()
    {
        var now = time.GetTimestamp();
        var models = admissions.Models.OrderBy(m => m.Model, StringComparer.Ordinal).Select(m => QueueReport(m, now));
        var snapshot = state.Current.Config;
        var utcNow = time.GetUtcNow();
        var windows = snapshot.TimeWindows.Select(w => w.ActiveUntil(utcNow) is { } until
            ? new TimeWindowReport(w.Name, w.Class, w.Schedule.Text, w.Schedule.Zone.Id, Duration.Format(w.Duration), true, until)
            : new TimeWindowReport(w.Name, w.Class, w.Schedule.Text, w.Schedule.Zone.Id, Duration.Format(w.Duration), false, null));
        return new QueuesResponse(snapshot.Scheduler.Policy, [.. models], [.. windows]);
    }

    private ModelQueueReport QueueReport(ModelAdmission m, long now)
    {
        var frequency = (double)time.TimestampFrequency;
        return new ModelQueueReport(
            m.Model,
            m.Slots.Capacity,
            m.Slots.Used,
            m.Waiting,
            m.GrantRate(),
            m.AgingInterval(now) / frequency,
            [.. m.Levels.Select(level => new QueueLevelReport(level.Index, level.Waiting, level.OldestWait(now) / frequency, m.Slots.Guaranteed(level.Index), m.Slots.UsedBy(level.Index)))],
            Classes(m),
            Accounts(m.Tenants));
    }

    public TenantReport[] Tenants()
    {
        var accounts = admissions.Models.SelectMany(m => m.Tenants).ToLookup(a => a.Name, StringComparer.Ordinal);
        var config = state.Current.Config;
        return [.. config.Tenants.Select(t =>
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
                Usd(month?.Nanos),
                config.StoreTenants.Contains(t.Name) ? "store" : "file",
                t.CacheSalt is not null,
                t.StreamBudgetCutoff,
                t.ResponseCache);
        })];
    }

    // The fair-share lens over the tenants' reports: each one's part of the tokens served against
    // its weight's part among the tenants with traffic, and its counters summed over the pools.
    public FairShareReport[] FairShare(TenantReport[] tenants)
    {
        var counters = admissions.Models.SelectMany(m => m.Tenants).ToLookup(a => a.Name, StringComparer.Ordinal);
        static long Tokens(TenantReport t) => t.PromptTokens + t.CompletionTokens;
        static bool Active(TenantReport t) => Tokens(t) > 0 || t.Waiting > 0 || t.InFlight > 0;
        var tokens = tenants.Sum(Tokens);
        var weights = tenants.Where(Active).Sum(t => (double)t.Weight);
        return [.. tenants.Select(t => new FairShareReport(
            t.Name,
            t.Weight,
            Tokens(t),
            tokens > 0 ? Tokens(t) / (double)tokens : 0,
            Active(t) && weights > 0 ? t.Weight / weights : 0,
            counters[t.Name].Sum(a => a.Counter),
            t.Waiting,
            t.InFlight))];
    }

    private static long? Left(TenantBudgetState? budget, BudgetKind kind) => budget?.Remaining(kind);

    private static decimal? Usd(long? nanos) => nanos is { } value ? BudgetAmount.Usd(value) : null;

    // The pool's classes, each with its protection when that is on.
    private static AccountReport[] Classes(ModelAdmission model)
    {
        var protection = model.Protection.State;
        var accounts = Accounts(model.Classes, classes: true);
        if (!protection.Model.IsOn)
        {
            return accounts;
        }

        return [.. accounts.Select(a => a with { Protection = Protection(protection, a.Name) })];
    }

    private static ProtectionReport Protection(ProtectionState protection, string className)
    {
        var index = protection.IndexOf(className);
        var (ratio, baseline) = index < 0 ? (0, 0) : (Finite(protection.ClassRatios[index]), protection.Classes[index].BaselineSeconds);
        var shed = protection.ShedIndex(className);
        return new ProtectionReport(shed >= 0, Finite(protection.ErrorRate), Finite(protection.TtftRatio), shed >= 0 ? protection.Since[shed] : null, protection.BaselineSeconds, ratio, baseline, protection.AdmitFraction(className));
    }

    private static double Finite(double value) => double.IsNaN(value) ? 0 : value;

    private static AccountReport[] Accounts(IEnumerable<FairShareAccount> accounts, bool classes = false) =>
        [.. accounts.OrderBy(a => a.Name, StringComparer.Ordinal).Select(a => new AccountReport(a.Name, a.Waiting, a.InFlight, a.Counter, Preemptions: classes ? a.Preemptions : null))];

    public WorkerReport[] Workers()
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
            Pacing(w.Pacer),
            w.Warming)).ToArray();
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

    public RoutingStatsResponse RoutingStats() => RoutingStats(state.Current);

    private RoutingStatsResponse RoutingStats(GatewayView view)
    {
        var workers = view.Workers.Workers;
        var routing = view.Config.Routing;
        var horizon = WorkerState.Horizon(time, time.GetTimestamp(), routing.PrefixTtl);
        return new(routing.Strategy, workers.Select(w =>
        {
            var byStrategy = new Dictionary<string, long>(StringComparer.Ordinal);
            for (var i = 0; i < RoutingStrategyNames.All.Length; i++)
            {
                byStrategy[RoutingStrategyNames.All[i]] = w.Decisions(i);
            }

            var lora = w.Scraped?.Metrics.Lora ?? default;
            var models = w.MetricsFilter.Models; // the list the masks index
            return new RoutingWorkerStats(
                w.Name,
                byStrategy.Values.Sum(),
                byStrategy,
                LoraAdapters.Names(lora.RunningMask, models),
                LoraAdapters.Names(lora.WaitingMask, models),
                lora.Reported ? lora.MaxLora : null,
                w.Affinity.SessionPicks,
                w.PushBacks,
                w.Warming,
                w.Cache.CapacityTokens,
                w.Cache.ResidentTokens(horizon),
                Math.Round(w.Cache.Correction, 3),
                w.PrefillBacklog,
                w.Decoding,
                Math.Round(w.PrefillTokensPerSecond),
                w.PrefillTime.Seconds > 0,
                (long)P2cKvPolicy.StickyThresholdTokens(w, workers));
        }).ToArray());
    }

    public BreakerReport[] Breakers() =>
        state.Current.Workers.Workers.Select(w => new BreakerReport(
            w.Name,
            EnumNames.Snake(w.Breaker.State),
            w.Breaker.ConsecutiveFailures,
            w.Breaker.Failures,
            w.Breaker.TimesOpened,
            w.Breaker.LastTransition)).ToArray();

    private static double? Sample(double seconds) => seconds > 0 ? seconds : null;

    // GET /api/usage?since=2026-11-01&until=...&by=tenant|model|requested_model|day: the ledger at `path`, summed
    // as `aotproxy usage` prints it. Read on a connection of its own: SQLite in WAL mode lets it
    // run beside the writer. The scan blocks its thread (~1.3 s over 1M rows, perf/RESULTS.md), so
    // it runs on the thread pool, never on the epoll thread the admin request came in on, which
    // the data plane's sockets share (Gateway/EventLoop.cs). Cancelled, it stops (sqlite3_interrupt).
    public static async Task<UsageResponse> UsageAsync(string path, UsageQuery query, CancellationToken aborted)
    {
        var rows = await Task.Run(
            () =>
            {
                using var connection = LedgerDatabase.Open(path, create: false);
                return query.Run(connection, aborted);
            },
            aborted).ConfigureAwait(false);
        return new UsageResponse(query.ByName, query.Since, query.Until, rows);
    }

    public static ReloadReport Reload(ReloadStatus status) =>
        new(status.At, status.Ok, status.Revision, status.Errors.Select(e => e.ToString()).ToArray());
}
