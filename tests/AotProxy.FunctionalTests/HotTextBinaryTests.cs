using System.Net;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 22, the hot code in 2 MiB pages (src/AotProxy.Hosting/HotText.cs): `serve` in the AOT
// binary moves the first 4 MiB of its code segment into anonymous huge pages, at the addresses
// the code had, and then serves as before; AOTPROXY_HOT_TEXT_MIB=0 leaves the code in the file.
// The JIT build has no code segment of its own to move and must leave its code alone.
public class HotTextBinaryTests
{
    private static readonly Dictionary<string, string> Debug = new() { ["AOTPROXY_LOG_LEVEL"] = "Debug" };

    [Fact]
    public async Task Serve_MovesTheCodeSegmentsFirst4MiB_IntoHugePages_AndServes()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, environment: Debug);
        await ServesAsync(gateway);

        var line = await gateway.Process.WaitForLineAsync("Hot code:", TimeSpan.FromSeconds(10));
        var code = CodeMapping.Read(gateway.Process.Id);
        if (!GatewayProcess.IsAot)
        {
            Assert.Contains("first 0 MiB", line, StringComparison.Ordinal);
            Assert.DoesNotContain(code, m => m.Anonymous);
            return;
        }

        Assert.Contains("first 4 MiB", line, StringComparison.Ordinal);
        var huge = Assert.Single(code, m => m.Anonymous);
        Assert.Equal(0ul, huge.Start % (2 << 20));
        Assert.Equal(4ul << 20, huge.End - huge.Start);
        Assert.Equal(4096, huge.AnonHugeKiB);
        Assert.Equal(4096, huge.RssKiB);

        // The rest of the code is the file's, right after.
        var rest = Assert.Single(code, m => m.Start == huge.End);
        Assert.False(rest.Anonymous);
        Assert.Equal(0x600000ul, rest.Offset);
    }

    [Fact]
    public async Task Serve_WithHotTextOff_LeavesAllCodeInTheFile_AndServes()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, environment: new Dictionary<string, string>(Debug) { ["AOTPROXY_HOT_TEXT_MIB"] = "0" });
        await ServesAsync(gateway);

        Assert.Contains("first 0 MiB", await gateway.Process.WaitForLineAsync("Hot code:", TimeSpan.FromSeconds(10)), StringComparison.Ordinal);
        var code = CodeMapping.Read(gateway.Process.Id);
        Assert.NotEmpty(code);
        Assert.All(code, m => Assert.False(m.Anonymous));
        Assert.All(code, m => Assert.Equal(0, m.AnonHugeKiB));
    }

    private static async Task ServesAsync(BinaryGateway gateway)
    {
        foreach (var stream in new[] { false, true })
        {
            using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: stream, maxTokens: 8)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Contains(stream ? "data: [DONE]" : "\"usage\"", body, StringComparison.Ordinal);
        }
    }
}
