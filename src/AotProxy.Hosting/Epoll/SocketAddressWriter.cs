using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace AotProxy.Hosting.Epoll;

// An IPEndPoint as connect(2) takes it: struct sockaddr_in or sockaddr_in6 (SocketAddressReader's inverse).
internal static class SocketAddressWriter
{
    // Writes into `address` (at least SocketAddressReader.Size bytes) and returns the length.
    public static int Write(IPEndPoint endPoint, Span<byte> address)
    {
        address[..28].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(address[2..], (ushort)endPoint.Port);
        if (endPoint.AddressFamily == AddressFamily.InterNetworkV6)
        {
            BitConverter.TryWriteBytes(address, (ushort)EpollNative.AfInet6);
            endPoint.Address.TryWriteBytes(address.Slice(8, 16), out _);
            BitConverter.TryWriteBytes(address[24..], (uint)endPoint.Address.ScopeId);
            return 28;
        }

        BitConverter.TryWriteBytes(address, (ushort)EpollNative.AfInet);
        endPoint.Address.TryWriteBytes(address.Slice(4, 4), out _);
        return 16;
    }
}
