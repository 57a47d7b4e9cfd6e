namespace AotProxy.Hosting;

// Which Kestrel transport a listener reads and writes its sockets with (server.transport).
public enum ListenerTransport
{
    // .NET's socket engine (SocketTransportFactory), inline scheduling.
    Sockets,

    // Epoll/EpollTransportFactory: recv only after edge-triggered readiness (issue 22).
    Epoll,
}
