using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// Client input that no honest client sends (issue 14): text that is not UTF-8 in a token or a
// model name, stream_options vLLM refuses, a model name of 60,000 characters. Each gets a clear
// answer and costs nothing else: no 500, no stack trace, no unbounded log or echo.
public class HostileInputTests
{
    private const string SecretEnv = "AOTPROXY_FUNCTIONAL_JWT_SECRET";

    [Fact]
    public async Task Binary_JwtWithInvalidTextInKidOrTenant_Is401WithTheReason_CountedAndLoggedAtMostOnceASecond()
    {
        Environment.SetEnvironmentVariable(SecretEnv, TestJwt.Secret);
        await using var worker = await StartWorkerAsync();
        var directory = Directory.CreateTempSubdirectory("aotproxy-input-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $"\n[jwt]\nhs256_secret_env = \"{SecretEnv}\"\n"));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };
        var now = DateTimeOffset.UtcNow;
        var claims = Bytes(TestJwt.Claims("acme", now));
        var header = Bytes("""{"alg":"HS256","typ":"JWT"}""");
        var exp = $",\"exp\":{now.ToUnixTimeSeconds() + 3600}}}";
        string[] tokens =
        [
            TestJwt.Hs256(claims, Bytes("""{"alg":"HS256","kid":"\ud800"}""")),                 // an escaped lone surrogate
            TestJwt.Hs256(claims, [.. Bytes("{\"alg\":\"HS256\",\"kid\":\""), 0xFF, 0xFE, .. Bytes("\"}")]), // invalid UTF-8
            TestJwt.Hs256([.. Bytes("{\"tenant\":\""), 0xC3, 0x28, .. Bytes("\"" + exp)], header),              // in a signed token's tenant
            TestJwt.Hs256(Bytes("{\"tenant\":\"\\udc00acme\"" + exp), header),
        ];

        var clock = Stopwatch.StartNew();
        foreach (var token in tokens)
        {
            using var response = await http.SendAsync(Chat(token));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains("invalid_token", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            var error = await ErrorOf(response);
            Assert.Equal("invalid_token", error.GetProperty("code").GetString());
            Assert.Contains("not valid UTF-8", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // A flood of them: each answered and counted, the log bounded.
        const int Flood = 400;
        for (var i = 0; i < Flood; i++)
        {
            using var response = await http.SendAsync(Chat(tokens[i % tokens.Length]));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        using (var models = new HttpRequestMessage(HttpMethod.Get, "v1/models"))
        {
            models.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens[0]);
            using var response = await http.SendAsync(models);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        var elapsed = clock.Elapsed;
        using (var good = await http.SendAsync(Chat(TestJwt.Hs256(TestJwt.Claims("acme", now)))))
        {
            Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        }

        // Each counted in its finally, which may run after the client has its answer.
        var metrics = await Fleet.MetricsAfterAsync(admin, tokens.Length + Flood + 2);
        Assert.Equal(tokens.Length + Flood + 1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"401\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"200\""));

        // After the exit the output is complete: every line the requests above could have caused is in it.
        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var output = gateway.Output;
        var lines = output.Split('\n').Where(l => l.Contains("not identified", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(lines);
        Assert.True(lines.Count <= (int)elapsed.TotalSeconds + 1, $"{lines.Count} lines in {elapsed}:\n{string.Join('\n', lines)}");
        Assert.All(lines, l => Assert.True(l.Length < 300, l));
        Assert.Contains("(InvalidText)", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Binary_ModelThatIsNotValidText_Is400InvalidRequestError()
    {
        await using var worker = await StartWorkerAsync();
        var directory = Directory.CreateTempSubdirectory("aotproxy-input-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker]));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };
        const string Messages = ""","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""";
        byte[][] bodies =
        [
            [.. Bytes("{\"model\":\""), 0xFF, 0xFE, .. Bytes("\"" + Messages)],
            [.. Bytes("{\"model\":\"meta-llama/"), 0xED, 0xA0, 0x80, .. Bytes("\"" + Messages)], // a surrogate encoded as UTF-8
            Bytes("{\"model\":\"\\ud800\"" + Messages),
            Bytes("{\"model\":\"a\\udc00b\"" + Messages),
        ];

        foreach (var body in bodies)
        {
            using var response = await http.SendAsync(Post(body));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var error = await ErrorOf(response);
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Equal("invalid_value", error.GetProperty("code").GetString());
            Assert.Equal("model", error.GetProperty("param").GetString());
        }

        // A key that is not valid text is no field the gateway reads: the request goes to the worker
        // as sent, and the worker's answer comes back (the simulator refuses the key; vLLM takes it).
        var oddKey = Bytes("{\"\\ud800\":1,\"model\":\"" + TestGateway.Model + "\"" + Messages);
        using var direct = new HttpClient { BaseAddress = worker.BaseUri };
        using var expected = await direct.SendAsync(Post(oddKey));
        using (var response = await http.SendAsync(Post(oddKey)))
        {
            Assert.Equal(expected.StatusCode, response.StatusCode);
            Assert.Equal(await expected.Content.ReadAsStringAsync(), await response.Content.ReadAsStringAsync());
        }

        // Each counted in its finally, which may run after the client has its answer.
        var metrics = await Fleet.MetricsAfterAsync(admin, bodies.Length + 1);
        Assert.Equal(bodies.Length, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"400\"", "model=\"\""));
        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.DoesNotContain("Exception", gateway.Output, StringComparison.Ordinal);
        directory.Delete(recursive: true);
    }

    // vLLM (and the simulator, like it) refuses these with a 400. The gateway used to rewrite them
    // into {"include_usage":true}, and the client got a 200 where the worker would have said 400.
    [Theory]
    [InlineData("\"x\"")]
    [InlineData("[1,2]")]
    [InlineData("{\"include_usage\":\"yes\"}")]
    [InlineData("1")]
    public async Task MalformedStreamOptions_GoToTheWorkerUnchanged_AndItsAnswerComesBack(string streamOptions)
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        using var direct = new HttpClient { BaseAddress = gateway.Workers[0].BaseUri };
        var body = TestGateway.Chat(stream: true, maxTokens: 4, streamOptions: streamOptions);

        using var expected = await direct.SendAsync(TestGateway.Post("v1/chat/completions", body, key: null));
        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", body));

        Assert.Equal(HttpStatusCode.BadRequest, expected.StatusCode);
        Assert.Equal(expected.StatusCode, response.StatusCode);
        Assert.Equal(await expected.Content.ReadAsStringAsync(), await response.Content.ReadAsStringAsync());
        await TestGateway.WaitUntilAsync(
            async () => MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_active_requests") == 0
                && gateway.Host.State.Current.Workers.Workers.All(w => w.InFlight == 0),
            "nothing is in flight");
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAfterAsync(1), "llm_gateway_requests_total", "status=\"400\""));
    }

    // A 404 or 403 quotes the model's first 256 characters, not all 60,000 (or the 4 MiB a body may hold).
    [Fact]
    public async Task LongModelNameOrPath_IsQuotedCutInTheError()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        var model = string.Concat(Enumerable.Repeat("0123456789", 6_000));
        var body = $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""";

        using var notFound = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", body));
        using var notAllowed = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", body, key: TestGateway.LimitedKey));
        using var unknownPath = await gateway.Client.GetAsync("v1/" + model[..5_000]);

        foreach (var (response, status) in new[] { (notFound, HttpStatusCode.NotFound), (notAllowed, HttpStatusCode.Forbidden), (unknownPath, HttpStatusCode.NotFound) })
        {
            Assert.Equal(status, response.StatusCode);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(text.Length < 1024, $"{text.Length} characters");
            var message = (await ErrorOf(response)).GetProperty("message").GetString()!;
            Assert.Contains(model[..200], message, StringComparison.Ordinal);
            Assert.Contains("…", message, StringComparison.Ordinal);
        }
    }

    private static Task<SimulatedWorker> StartWorkerAsync() =>
        SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static HttpRequestMessage Chat(string token)
    {
        var request = TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 2), key: null);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    private static HttpRequestMessage Post(byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestGateway.Key);
        return request;
    }

    private static async Task<JsonElement> ErrorOf(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("error").Clone();
    }
}
