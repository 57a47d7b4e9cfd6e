using System.Buffers.Binary;
using System.Net;

namespace AotProxy.Hosting.Epoll;

// struct sockaddr_in / sockaddr_in6 as accept4 and getsockname fill them, to an IPEndPoint.
internal static class SocketAddressReader
{
    // sockaddr_storage: large enough for either family.
    public const int Size = 128;

    private const ushort AfInet = 2;
    private const ushort AfInet6 = 10;

    public static IPEndPoint? Read(ReadOnlySpan<byte> address)
    {
        var family = BitConverter.ToUInt16(address);
        var port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
        return family switch
        {
            AfInet => new IPEndPoint(new IPAddress(address.Slice(4, 4)), port),
            AfInet6 => new IPEndPoint(new IPAddress(address.Slice(8, 16), BitConverter.ToUInt32(address[24..])), port),
            _ => null,
        };
    }
}
