using System.Net;
using System.Net.Sockets;
using System.Text;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 14, item 14: caps an operator expects on the data plane's listeners. 6,000 idle client
// connections were accepted with no limit, and the listener's comment claimed a 1 MiB header
// limit where Kestrel's 32 KiB applied.
public class ListenerLimitTests
{
    [Fact]
    public async Task MaxConnections_Reached_TheNextConnectionIsClosedUntilOneEnds()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, serverToml: "max_connections = 4");
        var idle = new List<TcpClient>();
        try
        {
            // Each served once (and kept open): Kestrel has counted it before the fifth connects.
            // A connection only connected may still wait for Kestrel's accept, and the connection
            // limit is taken on the thread pool, so the fifth could be counted first (seen in CI).
            for (var i = 0; i < 4; i++)
            {
                idle.Add(await ConnectAsync(gateway.Host.DataUri));
                Assert.StartsWith("HTTP/1.1 200", await TryGetHealthAsync(idle[^1]), StringComparison.Ordinal);
            }

            // Kestrel accepts the fifth and closes it at once: no response, however long it waits.
            using (var fifth = await ConnectAsync(gateway.Host.DataUri))
            {
                Assert.Null(await TryGetHealthAsync(fifth));
            }

            // Only the data plane is capped.
            Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.GetAsync("/health")).StatusCode);

            idle[0].Dispose();
            idle.RemoveAt(0);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            string? status = null;
            while (status is null && DateTime.UtcNow < deadline)
            {
                using var next = await ConnectAsync(gateway.Host.DataUri);
                status = await TryGetHealthAsync(next);
            }

            Assert.StartsWith("HTTP/1.1 200", status, StringComparison.Ordinal);
        }
        finally
        {
            idle.ForEach(c => c.Dispose());
        }
    }

    [Theory]
    [InlineData("", 20 * 1024, HttpStatusCode.OK)]
    [InlineData("", 40 * 1024, HttpStatusCode.RequestHeaderFieldsTooLarge)] // the default: 32 KiB
    [InlineData("max_header_bytes = 65536", 48 * 1024, HttpStatusCode.OK)]
    [InlineData("max_header_bytes = 65536", 80 * 1024, HttpStatusCode.RequestHeaderFieldsTooLarge)]
    public async Task MaxHeaderBytes_IsTheLimitOfAllHeaders(string serverToml, int padding, HttpStatusCode expected)
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, serverToml: serverToml);
        using var request = Models(padding);

        using var response = await gateway.Client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }

    // HTTP/2 limits each header field on its own (16 KiB by default in Kestrel); the key applies
    // to h2c as it does to HTTP/1.1.
    [Fact]
    public async Task MaxHeaderBytes_AppliesToH2c()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, h2c: true, serverToml: "max_header_bytes = 65536");
        using var http = new HttpClient
        {
            BaseAddress = gateway.Host.H2cUri,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var request = Models(40 * 1024);
        request.Version = HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    // GET /v1/models, which the gateway answers itself: a padded header sent upstream would meet
    // the worker's own limit.
    private static HttpRequestMessage Models(int padding)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TestGateway.Key);
        request.Headers.Add("x-padding", new string('a', padding));
        return request;
    }

    private static async Task<TcpClient> ConnectAsync(Uri uri)
    {
        var client = new TcpClient();
        await client.ConnectAsync(uri.Host, uri.Port);
        return client;
    }

    // The status line of GET /health on this connection; null when the gateway closed it without
    // an answer. 10 s bounds a gateway that neither answers nor closes.
    private static async Task<string?> TryGetHealthAsync(TcpClient client)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync("GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[256];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return read == 0 ? null : Encoding.ASCII.GetString(buffer, 0, read).Split("\r\n")[0];
        }
        catch (IOException)
        {
            return null; // reset
        }
    }
}
