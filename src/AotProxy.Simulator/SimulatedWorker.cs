using System.Net;
using AotProxy.Hosting;
using Microsoft.Extensions.Logging;

namespace AotProxy.Simulator;

// One simulated vLLM server on its own socket: a SimulatorApplication behind a KestrelListener.
public sealed class SimulatedWorker : IAsyncDisposable
{
    private readonly KestrelListener _listener;
    private readonly SimulatorApplication _application;
    private int _disposed;

    private SimulatedWorker(KestrelListener listener, SimulatorApplication application)
    {
        _listener = listener;
        _application = application;
        BaseUri = listener.BaseUri;
    }

    // With port 0 in the endpoint, this carries the port the OS chose.
    public Uri BaseUri { get; }

    public SimulatorOptions Options => _application.Options;

    public SimulatorStats Stats => _application.Stats;

    internal SimulatorApplication Application => _application;

    public static async Task<SimulatedWorker> StartAsync(SimulatorOptions options, IPEndPoint endPoint, ILoggerFactory loggerFactory, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var application = new SimulatorApplication(options, loggerFactory);
        KestrelListener listener;
        try
        {
            listener = await KestrelListener.StartAsync(endPoint, application.HandleAsync, loggerFactory, cancellationToken: ct).ConfigureAwait(false);
        }
        catch
        {
            await application.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var worker = new SimulatedWorker(listener, application);
        SimulatorLog.WorkerStarted(application.Logger, options.Name, options.Model, worker.BaseUri);
        return worker;
    }

    // Graceful: no new connections; in-flight requests run on until ct fires, then are cut.
    public async Task StopAsync(CancellationToken ct)
    {
        using var cut = ct.Register(static state => ((SimulatorApplication)state!).AbortAll(), _application);
        await _listener.StopAsync(ct).ConfigureAwait(false);
    }

    // Abrupt: in-flight requests are cut at once, as if the process died.
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _application.AbortAll();
        await _listener.DisposeAsync().ConfigureAwait(false);
        await _application.DisposeAsync().ConfigureAwait(false);
        SimulatorLog.WorkerStopped(_application.Logger, _application.Options.Name);
    }
}
