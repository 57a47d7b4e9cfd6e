using System.Collections.Immutable;
using AotProxy.Configuration;
using AotProxy.Upstream;

namespace AotProxy.Routing;

// The long-lived, mutable side of a worker. It outlives reloads while the worker's name and URL
// stay the same, so counters carry over; requests in flight hold it even after a reload removed
// the worker, and finish on it.
internal sealed class WorkerState
{
    private volatile WorkerModel _model;
    private volatile string? _authorization;
    private ImmutableArray<string> _discoveredModels = [];
    private int _inFlight;
    private long _requests;
    private volatile bool _draining;
    private volatile bool _removed;

    public WorkerState(WorkerModel model)
    {
        _model = model;
        _authorization = BearerOf(model);
        Connections = new UpstreamPool(new UpstreamEndpoint(model.Url), TimeProvider.System);
    }

    // Keep-alive connections to this worker; the URL is part of the state's identity, so the
    // pool lives exactly as long as the state.
    public UpstreamPool Connections { get; }

    public WorkerModel Model => _model;

    public string Name => _model.Name;

    // "Bearer <api_key>", computed once per config, or null.
    public string? Authorization => _authorization;

    // Configured models win; otherwise what GET /v1/models last answered.
    public ImmutableArray<string> Models => _model.Models.IsEmpty ? DiscoveredModels : _model.Models;

    public ImmutableArray<string> DiscoveredModels
    {
        get => ImmutableInterlocked.InterlockedCompareExchange(ref _discoveredModels, default, default);
        set => ImmutableInterlocked.InterlockedExchange(ref _discoveredModels, value);
    }

    public bool NeedsDiscovery => _model.Models.IsEmpty;

    public int InFlight => Volatile.Read(ref _inFlight);

    public long Requests => Interlocked.Read(ref _requests);

    public bool Draining
    {
        get => _draining;
        set => _draining = value;
    }

    // Set when a reload dropped the worker: it takes no new requests.
    public bool Removed
    {
        get => _removed;
        set => _removed = value;
    }

    public bool IsRoutable => !_draining && !_removed;

    public void Update(WorkerModel model)
    {
        _model = model;
        _authorization = BearerOf(model);
    }

    public void OnRequestStart()
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _requests);
    }

    public void OnRequestEnd() => Interlocked.Decrement(ref _inFlight);

    private static string? BearerOf(WorkerModel model) =>
        model.ApiKey.Length == 0 ? null : "Bearer " + model.ApiKey;
}
