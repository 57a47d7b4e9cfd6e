using AotProxy.Hosting.Epoll;

namespace AotProxy.Tests.Upstream;

// UpstreamPoolTests with server.transport = "epoll": every connection an EpollStream on a loop
// (the probe of an idle connection the worker closed, scavenging, close) instead of a .NET socket.
public sealed class EpollUpstreamPoolTests : UpstreamPoolTests, IDisposable
{
    private readonly EpollClientLoops _loops = new();

    private protected override EpollClientLoops? Loops => _loops;

    public void Dispose() => _loops.Dispose();
}
