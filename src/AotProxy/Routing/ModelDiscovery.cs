using System.Collections.Immutable;
using AotProxy.Gateway;
using AotProxy.Threading;
using Microsoft.Extensions.Logging;

namespace AotProxy.Routing;

// For workers configured without `models`: asks GET /v1/models until it answers, then every
// RefreshInterval, so a worker that loads a new model starts getting its traffic. A new view (a
// reload may add such a worker) starts a pass at once. What it finds, GatewayState publishes.
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

    private async Task<ImmutableArray<ListedModel>?> FetchAsync(WorkerState worker, CancellationToken cancellationToken)
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
                RoutingLog.DiscoveryFailed(logger, worker.Name, $"HTTP {(int)response.StatusCode}");
                return null;
            }

            if (!ModelListReader.TryRead(body, out var models))
            {
                RoutingLog.DiscoveryFailed(logger, worker.Name, "the body is not a model list");
                return null;
            }

            return models;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                RoutingLog.DiscoveryFailed(logger, worker.Name, ex.Message);
            }

            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
    }
}
