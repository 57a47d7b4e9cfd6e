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

        // The ledger is opened first (a gateway that cannot record must not serve), so its line
        // comes first; then the one line about the address. No stack trace.
        Assert.Equal(1, exitCode);
        Assert.EndsWith($"aotproxy: cannot listen on {address} (server.admin_listen): the address is already in use", output.TrimEnd(), StringComparison.Ordinal);
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
}
