using System.Net.Sockets;
using AotProxy.Hosting;

namespace AotProxy.Upstream;

// An upstream connection on .NET's sockets (server.transport = "sockets", and every TLS worker):
// the NetworkStream its reads and writes go through, and the socket's own calls. The socket is
// set non-blocking after the stream's constructor (which refuses one): its async reads and writes
// do not depend on it, and a send on the socket returns at once.
internal sealed class SocketStream : NetworkStream, IUpstreamTransport
{
    private SocketStream(Socket socket)
        : base(socket, ownsSocket: true) => socket.Blocking = false;

    public static async ValueTask<SocketStream> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
            return new SocketStream(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // One non-blocking send, without the event args a .NET socket allocates for its first async
    // send and keeps for its life (a few hundred bytes on every upstream connection, so on every
    // stream: perf/RESULTS.md, issue 22, third pass).
    public int SendNow(ReadOnlySpan<byte> bytes)
    {
        var sent = Socket.Send(bytes, SocketFlags.None, out var error);
        if (error is not (SocketError.Success or SocketError.WouldBlock))
        {
            // As NetworkStream reports it: the forwarder's retry on a new connection sees the same.
            throw new IOException($"Unable to write data to the transport connection: {error}.", new SocketException((int)error));
        }

        return sent;
    }

    public bool LooksAlive() => !Socket.Poll(0, SelectMode.SelectRead);
}
