namespace AotProxy.Hosting.Epoll;

// The loop an outgoing connection joins (server.transport = "epoll"): the loop of the client
// connection the request came on, even when the request runs on the thread pool (Kestrel starts
// a connection's first request there), else the calling thread's, when it is an epoll loop; the
// answer is then relayed on that loop, one thread for the whole walk, as in an nginx worker. With
// neither (health checks, warm-up, a client on .NET's sockets), a loop of its own, started on
// first use.
internal sealed class EpollClientLoops : IDisposable
{
    private EpollLoop? _own;

    // The loop a request's walk belongs to; null off any loop.
    public static EpollLoop? Of(EpollLoop? client) => client ?? EpollLoop.Current;

    public EpollLoop Pick(EpollLoop? client) => Of(client) ?? Own();

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
