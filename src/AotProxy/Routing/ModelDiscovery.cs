using System.Collections.Immutable;
using AotProxy.Gateway;
using AotProxy.Threading;
using Microsoft.Extensions.Logging;

namespace AotProxy.Routing;

// For workers configured without `models`: asks GET /v1/models until it answers, then every
// RefreshInterval, so a worker that loads a new model starts getting its traffic. A new view (a
// reload may add such a worker) starts a pass at once. What it finds, GatewayState publishes.
//
// Workers configured with `models`: which of those are LoRA adapters (listed with a parent)
// LoRA-aware routing needs to know, and the config does not say. Only a worker whose scrape
// reports LoRA (vllm:lora_requests_info, which vLLM writes only with --enable-lora) is asked: once,
// then again when the scrape names a configured model as a running or waiting adapter that the
// gateway does not know as one, at most once per RefreshInterval. A worker without LoRA, like a
// hosted API or a fake, sees no request it did not see before. A failure is not logged (asking is
// a courtesy) and holds up nothing: this runs in its own loop, every metrics_interval.
internal sealed class ModelDiscovery(GatewayState state, HttpMessageInvoker http, TimeProvider time, ILogger logger) : IAsyncDisposable
{
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(2);
    internal static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(2);

    private readonly BackgroundLoop _loops = new();

    public void Start()
    {
        _loops.Start(RunAsync);
        _loops.Start(LearnAdaptersLoopAsync);
    }

    // One pass over the view's workers that need it; true when all of them have models.
    public async Task<bool> DiscoverOnceAsync(GatewayView view, CancellationToken cancellationToken)
    {
        var complete = true;
        var changed = false;
        foreach (var worker in view.Workers.Workers)
        {
            if (!worker.NeedsDiscovery)
            {
                continue;
            }

            var models = await FetchAsync(worker, cancellationToken).ConfigureAwait(false);
            if (models is { } cards && !cards.SequenceEqual(worker.ListedModels))
            {
                // A new max_model_len too: the pools derive their context length when rebuilt.
                worker.ListedModels = cards;
                changed = true;
            }

            if (models is { } listed && !(listed.Select(m => m.Id).SequenceEqual(worker.DiscoveredModels) && Adapters(listed).SequenceEqual(worker.DiscoveredAdapters)))
            {
                ImmutableArray<string> found = [.. listed.Select(m => m.Id)];
                worker.DiscoveredAdapters = Adapters(listed); // before the models: the set they rebuild reads both
                worker.DiscoveredModels = found;
#pragma warning disable CA1873 // boxing the list once per discovery (every 30 s) is not worth a guard
                RoutingLog.ModelsDiscovered(logger, worker.Name, found);
#pragma warning restore CA1873

                changed = true;
            }

            complete &= !worker.DiscoveredModels.IsEmpty;
        }

        if (changed)
        {
            state.OnModelsDiscovered();
        }

        return complete;
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var view = state.Current;
            var complete = await DiscoverOnceAsync(view, cancellationToken).ConfigureAwait(false);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, view.Replaced);
            try
            {
                await Task.Delay(complete ? RefreshInterval : RetryInterval, time, wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A new view: look at its workers now.
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static ImmutableArray<ListedModel> Adapters(ImmutableArray<ListedModel> listed) => [.. listed.Where(m => m.IsAdapter)];

    // One look at the view's configured workers: those due are asked, all at once; true when
    // any worker's adapters changed (its pools are rebuilt then).
    public async Task<bool> LearnAdaptersOnceAsync(GatewayView view, CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        var due = view.Workers.Workers.Where(w => AdaptersDue(w, now)).ToArray();
        if (due.Length == 0)
        {
            return false;
        }

        var learned = await Task.WhenAll(due.Select(w => LearnAdaptersAsync(w, now, cancellationToken))).ConfigureAwait(false);
        if (!learned.Contains(true))
        {
            return false;
        }

        state.OnModelsDiscovered();
        return true;
    }

    private async Task LearnAdaptersLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await LearnAdaptersOnceAsync(state.Current, cancellationToken).ConfigureAwait(false);
            try
            {
                // The scrape it waits for comes every metrics_interval; a look costs a few reads per
                // worker. The view is read again, not kept across the wait: a snapshot a reload
                // replaced would stay alive until the next look (WorkerMonitor.EveryAsync).
                await Task.Delay(state.Current.Config.Routing.MetricsInterval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    // A configured worker whose last good scrape reports LoRA, never asked yet, or (at most once
    // per RefreshInterval) naming an adapter the gateway does not know as one. Adapters that are
    // none of its configured models are left out: the gateway would not route them there anyway.
    private bool AdaptersDue(WorkerState worker, long now)
    {
        if (worker.NeedsDiscovery || worker.Scraped?.Metrics.Lora is not { Reported: true } lora)
        {
            return false;
        }

        var askedAt = worker.AdaptersAskedAt;
        if (askedAt == 0)
        {
            return true;
        }

        var named = lora.RunningMask | lora.WaitingMask;
        return named != 0 && (named & ~KnownAdapters(worker)) != 0 && time.GetElapsedTime(askedAt, now) >= RefreshInterval;
    }

    // The bits (LoraAdapters' masks) of the worker's models it is known to serve as adapters.
    private static ulong KnownAdapters(WorkerState worker)
    {
        var models = worker.MetricsFilter.Models;
        var known = 0UL;
        foreach (var adapter in worker.DiscoveredAdapters)
        {
            known |= LoraAdapter.BitOf(models, adapter.Id);
        }

        return known;
    }

    // The adapters among the worker's configured models; true when they or the listing changed.
    private async Task<bool> LearnAdaptersAsync(WorkerState worker, long now, CancellationToken cancellationToken)
    {
        worker.AdaptersAskedAt = now; // before the answer: a failed ask counts against the bound too
        if (await FetchAsync(worker, cancellationToken, quiet: true).ConfigureAwait(false) is not { } listed)
        {
            return false;
        }

        var relisted = !listed.SequenceEqual(worker.ListedModels); // a new max_model_len: the pools are rebuilt too
        worker.ListedModels = listed;
        var configured = worker.Model.Models;
        ImmutableArray<ListedModel> adapters = [.. listed.Where(m => m.IsAdapter && configured.Contains(m.Id))];
        if (adapters.SequenceEqual(worker.DiscoveredAdapters))
        {
            return relisted;
        }

        worker.DiscoveredAdapters = adapters;
        return true;
    }

    // quiet: a failure is not logged.
    private async Task<ImmutableArray<ListedModel>?> FetchAsync(WorkerState worker, CancellationToken cancellationToken, bool quiet = false)
    {
        try
        {
            using var deadline = new CancellationTokenSource(RequestTimeout, time);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(worker.Model.Url, "v1/models"));
            if (worker.Authorization is { } authorization)
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }

            using var response = await http.SendAsync(request, timeout.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                Failed(worker, $"HTTP {(int)response.StatusCode}", quiet);
                return null;
            }

            if (!ModelListReader.TryRead(body, out var models))
            {
                Failed(worker, "the body is not a model list", quiet);
                return null;
            }

            return models;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                Failed(worker, ex.Message, quiet);
            }

            return null;
        }
    }

    private void Failed(WorkerState worker, string reason, bool quiet)
    {
        if (!quiet)
        {
            RoutingLog.DiscoveryFailed(logger, worker.Name, reason);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
    }
}
