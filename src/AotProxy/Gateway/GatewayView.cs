using System.Diagnostics.CodeAnalysis;
using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Gateway;

// What a request runs on: one config snapshot and the worker set built for it, published together
// (GatewayState) and read once, at the request's start. Replaced is a change token: cancelled
// when the next view is published, for the background loops that wait on a change.
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "Replaced is only cancelled: a view is dropped while requests still hold it, and a CancellationTokenSource without a timer holds nothing to dispose.")]
internal sealed class GatewayView
{
    private readonly CancellationTokenSource _replaced = new();

    public GatewayView(GatewaySnapshot config, WorkerSet workers)
    {
        Config = config;
        Workers = workers;
    }

    public GatewaySnapshot Config { get; }

    public WorkerSet Workers { get; }

    public CancellationToken Replaced => _replaced.Token;

    // Routable by this view's breaker thresholds.
    public bool IsRoutable(WorkerState worker) => worker.IsRoutable(Config.CircuitBreaker);

    // Once, by GatewayState, after the next view is published (never under its lock: a waiter's
    // continuation may run on this thread). Not disposed: Replaced stays readable, and a source
    // without a timer holds nothing to free.
    internal void Replace() => _replaced.Cancel();
}
