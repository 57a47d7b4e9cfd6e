namespace AotProxy.Hosting;

// The socket under one upstream (worker) connection, as the stream its reads and writes go
// through: an epoll loop's (Epoll/EpollStream, server.transport = "epoll") or .NET's
// (AotProxy's Upstream/SocketStream). TLS is an SslStream over either. Reads, and the wait until
// readable (a zero-byte read), are the stream's own; these are the two calls a plain-HTTP
// connection makes on the socket itself.
internal interface IUpstreamTransport
{
    // Sends what the socket's buffer takes now, without waiting (a request nearly always fits:
    // one send, no async state); returns the bytes sent. A failure is an IOException, as a
    // write's would be.
    int SendNow(ReadOnlySpan<byte> bytes);

    // An idle connection with nothing asked of it and something to read has been closed by the
    // peer (EOF) or sent garbage: not reusable.
    bool LooksAlive();
}
