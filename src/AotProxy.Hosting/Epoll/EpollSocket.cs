using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace AotProxy.Hosting.Epoll;

// An accepted socket while no EpollConnection serves it (a parked keep-alive connection): its fd,
// still registered on its loop under the same token, and what a new EpollConnection needs to
// serve it again. An IPv4 peer is packed into one ulong (address << 16 | port, bit 63 set):
// the IPEndPoint and its IPAddress (~80 B) are made again at the resume. The local endpoint is
// the listener's shared one.
internal readonly struct EpollSocket
{
    private const ulong PackedV4 = 1UL << 63;
    private readonly EndPoint? _remote;
    private readonly ulong _remoteV4;

    public EpollSocket(EpollLoop loop, int fd, ulong token, long id, EndPoint? local, EndPoint? remote)
    {
        Loop = loop;
        Fd = fd;
        Token = token;
        Id = id;
        Local = local;
        Span<byte> address = stackalloc byte[4];
        if (remote is IPEndPoint { AddressFamily: AddressFamily.InterNetwork } ip && ip.Address.TryWriteBytes(address, out _))
        {
            _remoteV4 = PackedV4 | ((ulong)BinaryPrimitives.ReadUInt32BigEndian(address) << 16) | (ushort)ip.Port;
        }
        else
        {
            _remote = remote;
        }
    }

    public EpollLoop Loop { get; }

    public int Fd { get; }

    public ulong Token { get; }

    public long Id { get; }

    public EndPoint? Local { get; }

    public EndPoint? Remote
    {
        get
        {
            if (_remoteV4 == 0)
            {
                return _remote;
            }

            Span<byte> address = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(address, (uint)(_remoteV4 >> 16));
            return new IPEndPoint(new IPAddress(address), (ushort)_remoteV4);
        }
    }

    // Loop thread: bytes are waiting (a request), not only the peer's FIN or an error.
    public unsafe bool HasInput()
    {
        byte one;
        nint n;
        do
        {
            n = EpollNative.Recv(Fd, &one, 1, EpollNative.MsgPeek);
        }
        while (n < 0 && Marshal.GetLastPInvokeError() == EpollNative.EIntr);

        return n > 0;
    }

    // Loop thread (or any thread once the loop has stopped): closes the fd and frees its slot.
    public void Close()
    {
        EpollNative.Close(Fd);
        Loop.Unregister(-1, Token);
    }
}
