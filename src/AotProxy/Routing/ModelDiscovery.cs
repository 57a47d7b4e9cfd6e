using System.Collections.Immutable;
using AotProxy.Gateway;
using AotProxy.Threading;
using Microsoft.Extensions.Logging;

namespace AotProxy.Routing;

// For workers configured without `models`: asks GET /v1/models until it answers, then every
// RefreshInterval, so a worker that loads a new model starts getting its traffic. A new view (a
// reload may add such a worker) starts a pass at once. What it finds, GatewayState publishes.
// Workers configured with `models` are asked too, only for which of those are LoRA adapters (a
// parent in the list): LoRA-aware routing needs to know, and the config does not say. Their
// failures are not logged (a hosted API may not list models) and never hold up a pass.
internal sealed class ModelDiscovery(GatewayState state, HttpMessageInvoker http, TimeProvider time, ILogger logger) : IAsyncDisposable
{
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(2);

    private readonly BackgroundLoop _loops = new();

    public void Start() => _loops.Start(RunAsync);

    // One pass over the view's workers that need it; true when all of them have models.
    public async Task<bool> DiscoverOnceAsync(GatewayView view, CancellationToken cancellationToken)
    {
        var complete = true;
        var changed = false;
        foreach (var worker in view.Workers.Workers)
        {
            if (!worker.NeedsDiscovery)
            {
                changed |= await LearnAdaptersAsync(worker, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var models = await FetchAsync(worker, cancellationToken).ConfigureAwait(false);
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

    // A configured worker: the adapters among its configured models; true when that changed.
    private async Task<bool> LearnAdaptersAsync(WorkerState worker, CancellationToken cancellationToken)
    {
        if (await FetchAsync(worker, cancellationToken, quiet: true).ConfigureAwait(false) is not { } listed)
        {
            return false;
        }

        var configured = worker.Model.Models;
        ImmutableArray<ListedModel> adapters = [.. listed.Where(m => m.IsAdapter && configured.Contains(m.Id))];
        if (adapters.SequenceEqual(worker.DiscoveredAdapters))
        {
            return false;
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
