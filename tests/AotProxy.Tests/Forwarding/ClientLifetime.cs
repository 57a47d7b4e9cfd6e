using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Tests.Forwarding;

// The client's connection in a forwarder test, as Kestrel presents it: RequestAborted fires
// when the client goes away (Disconnect) or the server aborts the response (Abort, which the
// forwarder calls to cut a response whose upstream broke off).
internal sealed class ClientLifetime : IHttpRequestLifetimeFeature, IDisposable
{
    private readonly CancellationTokenSource _aborted = new();
    private int _abortCalls;

    public CancellationToken RequestAborted
    {
        get => _aborted.Token;
        set => throw new NotSupportedException();
    }

    public bool AbortCalled => Volatile.Read(ref _abortCalls) > 0;

    public void Abort()
    {
        Interlocked.Increment(ref _abortCalls);
        _aborted.Cancel();
    }

    public void Disconnect() => _aborted.Cancel();

    public void Dispose() => _aborted.Dispose();
}
