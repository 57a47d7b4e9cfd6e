using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

// How a plain-HTTP connection on .NET's sockets sends a request, against a loopback listener: a
// request that fits the socket's buffer goes out in one non-blocking send that allocates nothing
// (an async send would leave its event args on the socket for the connection's life: a few hundred
// bytes per stream, perf/RESULTS.md issue 22, third pass); a larger one sends what fits, then the
// rest, in order.
public sealed class UpstreamConnectionTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public UpstreamConnectionTests() => _listener.Start();

    public void Dispose() => _listener.Stop();

    [Fact]
    public async Task Send_ARequestThatFitsTheSocketsBuffer_CompletesAtOnce_AllocatingNothing_AndArrivesWhole()
    {
        var request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"u8.ToArray();
        var accepting = _listener.AcceptTcpClientAsync();
        await using var connection = await ConnectAsync();
        using var worker = await accepting.WaitAsync(Deadline);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var sending = connection.SendAsync(request, CancellationToken.None);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(sending.IsCompletedSuccessfully);
        Assert.Equal(0, allocated);
        await sending;
        var received = new byte[request.Length];
        await worker.GetStream().ReadExactlyAsync(received).AsTask().WaitAsync(Deadline);
        Assert.Equal(request, received);
    }

    [Fact]
    public async Task Send_SixteenMiB_SendsWhatFits_ThenTheRest_InOrder()
    {
        // 16 MiB: many times the kernel's socket buffers, so the first send takes part of it and
        // the rest waits for the worker's reads.
        var payload = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
        var accepting = _listener.AcceptTcpClientAsync();
        await using var connection = await ConnectAsync();
        using var worker = await accepting.WaitAsync(Deadline);
        using var timeout = new CancellationTokenSource(Deadline);

        var sending = connection.SendAsync(payload, timeout.Token).AsTask();
        var received = new byte[payload.Length];
        await worker.GetStream().ReadExactlyAsync(received, timeout.Token);
        await sending;

        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(received));
    }

    private Task<UpstreamConnection> ConnectAsync() =>
        UpstreamConnection.ConnectAsync(new UpstreamEndpoint(new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/")), null, null, Deadline, CancellationToken.None).AsTask();
}
