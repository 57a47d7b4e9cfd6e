using System.Net;
using Microsoft.AspNetCore.Connections;

namespace AotProxy.Hosting.Epoll;

// Kestrel's transport for `server.transport = "epoll"`: each bound endpoint gets its own loops,
// one per core by default (perf/RESULTS.md, "Issue 22: the epoll transport experiment").
internal sealed class EpollTransportFactory(int loopCount = 0) : IConnectionListenerFactory
{
    // 512: the socket transport's default backlog.
    private const int Backlog = 512;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip)
        {
            throw new NotSupportedException($"the epoll transport binds IP endpoints only, not {endpoint}");
        }

        var loops = loopCount > 0 ? loopCount : Environment.ProcessorCount;
        return ValueTask.FromResult<IConnectionListener>(EpollListener.Bind(ip, loops, Backlog));
    }
}
