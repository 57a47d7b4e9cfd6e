using System.Globalization;
using System.Net;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 22, the process's base RSS: the methods the gateway runs from startup through its first
// requests are laid out first in the AOT binary's code (src/AotProxy/aotproxy.order), so that the
// kernel's 64 KiB fault-around maps little of the rest. With this test's config, after four
// requests, 11.1 MiB of the 13.4 MiB code mapping was resident without the order and 6.4 MiB with
// it (the order was recorded on perf/connections.sh's config, where it is 4.0 against 10.8;
// perf/RESULTS.md, "Issue 22: the process's base RSS"). Under the JIT the executable is the dotnet
// host, whose code is small too.
public class ResidentCodeBinaryTests
{
    private const long Bound = 8 << 20;

    [Fact]
    public async Task AfterStartupAndFirstRequests_LittleOfTheExecutablesCodeIsResident()
    {
        await using var gateway = await BinaryGateway.StartAsync(1);
        foreach (var stream in new[] { false, true, false, true })
        {
            using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: stream, maxTokens: 8)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await response.Content.ReadAsStringAsync();
        }

        var resident = ResidentCode(gateway.Process.Id);
        Assert.InRange(resident, 1, Bound);
    }

    // The Rss of the executable's own executable mappings (/proc/PID/smaps), in bytes.
    private static long ResidentCode(int pid)
    {
        var executable = new FileInfo($"/proc/{pid}/exe").LinkTarget!;
        long total = 0;
        var inCode = false;
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps"))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 5 && fields[0].Contains('-', StringComparison.Ordinal) && !fields[0].EndsWith(':'))
            {
                inCode = fields.Length >= 6 && fields[5] == executable && fields[1].Contains('x', StringComparison.Ordinal);
            }
            else if (inCode && fields[0] == "Rss:")
            {
                total += long.Parse(fields[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return total;
    }
}
