using System.Net;
using System.Net.Sockets;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 14, item 12: a listen address in use aborted the binary with an unhandled exception,
// 37 lines of stack trace and exit code 134. It is one line that names the address and the
// setting, and exit code 1. Against the real executable (the AOT binary in CI).
public class StartupTests
{
    [Theory]
    [InlineData("server.listen")]
    [InlineData("server.admin_listen")]
    [InlineData("server.h2c_listen")]
    public async Task Serve_AddressInUse_OneLineAndExitOne(string setting)
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var address = $"127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}";
        var directory = Directory.CreateTempSubdirectory("aotproxy-startup-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        // ledger.path = "": the ledger's own startup line would be a second line of output.
        await File.WriteAllTextAsync(config, $"""
            [server]
            listen = "{(setting == "server.listen" ? address : "127.0.0.1:0")}"
            admin_listen = "{(setting == "server.admin_listen" ? address : "127.0.0.1:0")}"
            h2c_listen = "{(setting == "server.h2c_listen" ? address : "")}"

            [ledger]
            path = ""
            """);

        var (exitCode, output) = await GatewayProcess.RunToEndAsync("serve", "--config", config);

        Assert.Equal(1, exitCode);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"aotproxy: cannot listen on {address} ({setting}): the address is already in use", line);
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Serve_AddressInUse_AfterTheLedgerOpened_OneErrorLine()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var address = $"127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}";
        var directory = Directory.CreateTempSubdirectory("aotproxy-startup-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, $"[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"{address}\"\n");

        var (exitCode, output) = await GatewayProcess.RunToEndAsync("serve", "--config", config);

        // The ledger is opened first (a gateway that cannot record must not serve) and closed
        // again, each with its log line; the failure itself is one line. No stack trace.
        Assert.Equal(1, exitCode);
        Assert.Equal(
            $"aotproxy: cannot listen on {address} (server.admin_listen): the address is already in use",
            Assert.Single(output.Split('\n'), l => l.Contains("cannot listen", StringComparison.Ordinal)));
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(directory.FullName, "aotproxy-usage.db")), output);
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Simulate_AddressInUse_OneLineAndExitOne()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var address = $"127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}";

        var (exitCode, output) = await GatewayProcess.RunToEndAsync("simulate", "--listen", address);

        Assert.Equal(1, exitCode);
        Assert.Equal($"aotproxy simulate: cannot listen on {address}: the address is already in use", Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    // server.max_connections against the binary: connections past the cap are closed, and a
    // flood of them is not a flood of log lines (Kestrel warns once per refused connection).
    [Fact]
    public async Task Serve_ConnectionsPastMaxConnections_ClosedWithOneLogLine()
    {
        var directory = Directory.CreateTempSubdirectory("aotproxy-startup-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nmax_connections = 2\n\n[ledger]\npath = \"\"\n");
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        var held = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                held.Add(new TcpClient());
                await held[i].ConnectAsync(gateway.DataUri!.Host, gateway.DataUri.Port);
                // Served once and kept alive: Kestrel has counted it. A connection the kernel
                // accepted is counted later, on a thread-pool thread, in no fixed order: without
                // this the third could be counted before the first two and be served (seen in CI).
                Assert.True(await ServedAsync(held[i]), $"held connection {i + 1} was not served");
            }

            for (var i = 0; i < 20; i++)
            {
                using var refused = new TcpClient();
                await refused.ConnectAsync(gateway.DataUri!.Host, gateway.DataUri.Port);
                Assert.True(await ClosedWithoutAnswerAsync(refused), $"connection {i + 3} was served");
            }
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }

        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var rejected = gateway.Output.Split('\n').Count(l => l.Contains("maximum number of concurrent connections", StringComparison.Ordinal));
        Assert.Equal(1, rejected);
        directory.Delete(recursive: true);
    }

    // A GET /health on a kept-alive connection, answered 200.
    private static async Task<bool> ServedAsync(TcpClient client)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var stream = client.GetStream();
        await stream.WriteAsync("GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n"u8.ToArray(), timeout.Token);
        var buffer = new byte[1024];
        var read = await stream.ReadAsync(buffer, timeout.Token);
        return System.Text.Encoding.ASCII.GetString(buffer, 0, read).StartsWith("HTTP/1.1 200", StringComparison.Ordinal);
    }

    private static async Task<bool> ClosedWithoutAnswerAsync(TcpClient client)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            var stream = client.GetStream();
            await stream.WriteAsync("GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n"u8.ToArray(), timeout.Token);
            return await stream.ReadAsync(new byte[64], timeout.Token) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }
}
