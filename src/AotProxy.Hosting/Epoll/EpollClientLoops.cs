namespace AotProxy.Hosting.Epoll;

// The loop an outgoing connection joins (server.transport = "epoll"): the calling thread's, when
// it is an epoll loop (a request read on a loop is then relayed on it, one thread for the whole
// walk, as in an nginx worker), else a loop of its own, started on first use (requests that go
// on elsewhere: h2c streams on the thread pool, a wait in an admission queue).
internal sealed class EpollClientLoops : IDisposable
{
    private EpollLoop? _own;

    public EpollLoop Pick() => EpollLoop.Current ?? Own();

    public void Dispose() => Volatile.Read(ref _own)?.Dispose();

    private EpollLoop Own()
    {
        if (Volatile.Read(ref _own) is { } own)
        {
            return own;
        }

        var created = new EpollLoop("epoll upstream");
        if (Interlocked.CompareExchange(ref _own, created, null) is { } first)
        {
            created.Dispose();
            return first;
        }

        return created;
    }
}
