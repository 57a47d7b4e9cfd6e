using System.Net;
using System.Text;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// `aotproxy simulate` through the real executable: one simulated vLLM worker, on its own.
public class SimulateCommandTests
{
    [Fact]
    public async Task Simulate_ServesChatCompletionsAndExitsZeroOnSigterm()
    {
        await using var simulator = GatewayProcess.Start("simulate", "--listen", "127.0.0.1:0", "--model", "bench", "--decode-tps", "500");
        var line = await simulator.WaitForLineAsync("aotproxy simulate ready:", TimeSpan.FromSeconds(30));
        var url = line[(line.IndexOf("url=", StringComparison.Ordinal) + 4)..].Trim();
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };

        using (var response = await http.PostAsync("v1/chat/completions", Chat(stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Contains("\"object\":\"chat.completion\"", body, StringComparison.Ordinal);
            Assert.Contains("\"model\":\"bench\"", body, StringComparison.Ordinal);
            Assert.Contains("\"usage\":{", body, StringComparison.Ordinal);
        }

        using (var response = await http.PostAsync("v1/chat/completions", Chat(stream: true)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            var body = await response.Content.ReadAsStringAsync();
            Assert.StartsWith("data: {", body, StringComparison.Ordinal);
            Assert.Contains("\"object\":\"chat.completion.chunk\"", body, StringComparison.Ordinal);
            Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        }

        simulator.SendSigterm();
        Assert.Equal(0, await simulator.WaitForExitAsync(TimeSpan.FromSeconds(15)));
    }

    [Theory]
    [InlineData("--listen", "nowhere")]
    [InlineData("--listen", "127.0.0.1:0", "--decode-tps", "0")]
    [InlineData("--listen", "127.0.0.1:0", "--metrics", "v9")]
    [InlineData("--listen", "127.0.0.1:0", "--decode-rate", "200")]
    [InlineData("--model", "bench")]
    public async Task Simulate_BadFlags_ExitTwoWithAMessageNamingTheFlag(params string[] flags)
    {
        var (exitCode, output) = await GatewayProcess.RunToEndAsync(["simulate", .. flags]);
        Assert.Equal(2, exitCode);
        Assert.Contains("--", output, StringComparison.Ordinal);
    }

    private static StringContent Chat(bool stream) => new(
        $$"""{"model":"bench","messages":[{"role":"user","content":"Hello!"}],"max_tokens":8,"stream":{{(stream ? "true" : "false")}}}""",
        Encoding.UTF8,
        "application/json");
}
