namespace AotProxy.Threading;

// The loops a component runs in the background from Start until it is disposed (a heartbeat, a
// flush, a scrape): one token stops them all, and the stop waits for each to end. A cancellation
// a loop throws on its way out is how it ends, not a failure.
internal sealed class BackgroundLoop : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];

    public void Start(Func<CancellationToken, Task> loop) => _loops.Add(Task.Run(() => loop(_stop.Token)));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
