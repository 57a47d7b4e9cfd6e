using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

public sealed class ConnectionReaderTests
{
    [Fact]
    public async Task Read_HeldBackBytes_AreKeptAndJoinedWithTheNextRead()
    {
        var pipe = new Pipe();
        var reader = new ConnectionReader(pipe.Reader.AsStream());
        await pipe.Writer.WriteAsync("data: one\n\ndata: tw"u8.ToArray());

        var first = await reader.ReadAsync();
        var text = Encoding.ASCII.GetString(first.Buffer.ToArray());
        var eventEnd = first.Buffer.GetPosition(text.IndexOf("\n\n", StringComparison.Ordinal) + 2);
        reader.AdvanceTo(eventEnd, first.Buffer.End);

        var pending = reader.ReadAsync();
        Assert.False(pending.IsCompleted); // everything was examined: it waits for the socket
        await pipe.Writer.WriteAsync("o\n\n"u8.ToArray());
        var second = await pending;

        Assert.Equal("data: two\n\n", Encoding.ASCII.GetString(second.Buffer.ToArray()));
        reader.AdvanceTo(second.Buffer.End);
        reader.Complete();
    }

    [Fact]
    public async Task Read_UnexaminedBytes_AreReturnedWithoutWaiting()
    {
        var pipe = new Pipe();
        var reader = new ConnectionReader(pipe.Reader.AsStream());
        await pipe.Writer.WriteAsync("HTTP/1.1 200 OK\r\n\r\nbody"u8.ToArray());

        var head = await reader.ReadAsync();
        reader.AdvanceTo(head.Buffer.GetPosition(19));
        var body = reader.ReadAsync();

        Assert.True(body.IsCompleted);
        Assert.Equal("body", Encoding.ASCII.GetString((await body).Buffer.ToArray()));
    }

    [Fact]
    public async Task Read_AMessageLargerThanTheBuffer_GrowsAndKeepsEveryByte()
    {
        var payload = Enumerable.Range(0, 100_000).Select(i => (byte)(i % 251)).ToArray();
        var reader = new ConnectionReader(new MemoryStream(payload));
        ReadResult result;
        do
        {
            result = await reader.ReadAsync();
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End); // consume nothing
        }
        while (!result.IsCompleted);

        Assert.Equal(payload, result.Buffer.ToArray());
    }

    [Fact]
    public async Task Read_EndOfStream_IsCompletedAndStaysCompleted()
    {
        var reader = new ConnectionReader(new MemoryStream("last"u8.ToArray()));
        var result = await reader.ReadAsync();
        while (!result.IsCompleted)
        {
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            result = await reader.ReadAsync();
        }

        Assert.Equal("last", Encoding.ASCII.GetString(result.Buffer.ToArray()));
        reader.AdvanceTo(result.Buffer.End);
        Assert.True((await reader.ReadAsync()).IsCompleted);
    }

    [Fact]
    public async Task Read_WaitingOnAnIdleSocket_HoldsNoBufferUntilBytesArrive()
    {
        var (client, server) = await ConnectedPairAsync();
        using var clientSocket = client;
        using var serverSocket = server;
        var reader = new ConnectionReader(new NetworkStream(client));

        // A stream between two slow tokens: the read waits on the socket, with no window rented.
        var pending = reader.ReadAsync();
        Assert.False(pending.IsCompleted);
        Assert.False(reader.HoldsBuffer);

        await server.SendAsync("data: token\n\n"u8.ToArray());
        var result = await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(reader.HoldsBuffer);
        Assert.Equal("data: token\n\n", Encoding.ASCII.GetString(result.Buffer.ToArray()));
        reader.AdvanceTo(result.Buffer.End);
        Assert.False(reader.HoldsBuffer); // all consumed: the window went back to the pool

        var next = reader.ReadAsync();
        Assert.False(next.IsCompleted);
        Assert.False(reader.HoldsBuffer);
        server.Shutdown(SocketShutdown.Send);
        Assert.True((await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10))).IsCompleted);
        reader.Complete();
    }

    // The relay waits for a stream's next token itself (WaitAsync), with no buffer rented; the read
    // after it completes at once, without a zero-byte read of its own, so no state machine of this
    // reader waits between two tokens. A read without the wait still waits on its own.
    [Fact]
    public async Task WaitAsync_ThenRead_CompletesAtOnce_WithoutASecondZeroByteRead()
    {
        var (client, server) = await ConnectedPairAsync();
        using var clientSocket = client;
        using var serverSocket = server;
        var stream = new ZeroByteReadCountingStream(new NetworkStream(client));
        var reader = new ConnectionReader(stream);

        Assert.True(reader.WouldWait);
        var wait = reader.WaitAsync(CancellationToken.None);
        Assert.False(wait.IsCompleted);
        Assert.False(reader.HoldsBuffer);
        await server.SendAsync("data: token\n\n"u8.ToArray());
        await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        var read = reader.ReadAsync();
        Assert.True(read.IsCompleted);
        Assert.Equal(1, stream.ZeroByteReads);
        var result = await read;
        Assert.Equal("data: token\n\n", Encoding.ASCII.GetString(result.Buffer.ToArray()));
        Assert.False(reader.WouldWait); // unexamined bytes: a read returns them at once
        reader.AdvanceTo(result.Buffer.End);
        Assert.True(reader.WouldWait);

        var next = reader.ReadAsync();
        Assert.False(next.IsCompleted);
        Assert.Equal(2, stream.ZeroByteReads);
        server.Shutdown(SocketShutdown.Send);
        Assert.True((await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10))).IsCompleted);
        Assert.False(reader.WouldWait); // at its end
        reader.Complete();
    }

    // A client socket connected to a server socket on loopback.
    private static async Task<(Socket Client, Socket Server)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (client, await listener.AcceptAsync());
    }
}
