using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// POST /v1/audio/transcriptions and /v1/audio/translations (issue 21) through the real binary in
// front of `aotproxy simulate` workers, called by the official openai npm client with a generated
// WAV file, streamed and not: the answers pass through, and the ledger counts exactly what the
// worker reported (a transcription's seconds, a stream's tokens), priced per second of audio. A
// malformed upload is a 400 that costs nothing, and the next request works.
public class AudioApiBinaryTests
{
    // 2 s of 16 kHz mono 16-bit PCM: vLLM reports "seconds": 2.
    private const double Seconds = 2.0;

    // USD per second of audio ([[prices]] audio_per_second): 0.0001 = 100,000 nano-USD.
    private const long NanosPerSecond = 100_000;

    private static readonly string Prices = $$"""

        [[prices]]
        model = "{{TestGateway.Model}}"
        input_per_million = 0
        output_per_million = 0
        audio_per_second = 0.0001
        """;

    [Fact]
    public async Task TranscriptionsAndTranslations_ThroughTheOpenAiClient_TheLedgerHasTheWorkersUsage()
    {
        await using var gateway = await SimulateGateway.StartAsync(extraToml: Prices);
        using var wav = new TempDirectory();
        var path = Path.Combine(wav.Path, "clip.wav");
        await File.WriteAllBytesAsync(path, WavFile.Of(Seconds));

        var created = await Audio(gateway.Process, "transcriptions", "create", path);
        var streamedWithUsage = await Audio(gateway.Process, "transcriptions", "stream-usage", path);
        var streamed = await Audio(gateway.Process, "transcriptions", "stream", path);
        var translated = await Audio(gateway.Process, "translations", "create", path);
        var translatedStream = await Audio(gateway.Process, "translations", "stream-usage", path);

        foreach (var result in new[] { created, streamedWithUsage, streamed, translated, translatedStream })
        {
            Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
            Assert.NotEqual("", result.GetProperty("text").GetString());
        }

        // vLLM's transcription answer: usage in seconds, rounded up.
        Assert.Equal("duration", created.GetProperty("usage").GetProperty("type").GetString());
        Assert.Equal(2, created.GetProperty("usage").GetProperty("seconds").GetInt64());
        // A translation's answer has no usage (vLLM writes none).
        Assert.Equal(JsonValueKind.Null, translated.GetProperty("usage").ValueKind);
        // Streams: transcription.chunk / translation.chunk objects and [DONE]; the usage chunk only
        // for the client that asked for it (the gateway asked for the other, and removed it).
        Assert.Equal("transcription.chunk", streamed.GetProperty("objects")[0].GetString());
        Assert.Equal("translation.chunk", translatedStream.GetProperty("objects")[0].GetString());
        Assert.True(streamed.GetProperty("done").GetBoolean());
        Assert.Equal(JsonValueKind.Null, streamed.GetProperty("usage").ValueKind);
        var streamUsage = streamedWithUsage.GetProperty("usage");
        Assert.True(streamUsage.GetProperty("prompt_tokens").GetInt64() > 0);
        Assert.Equal(streamUsage.ToString(), translatedStream.GetProperty("usage").ToString()); // the same file: the same counts
        Assert.Equal(streamed.GetProperty("chunks").GetInt32(), streamedWithUsage.GetProperty("chunks").GetInt32() - 1);

        var row = await gateway.LedgerRowAsync("acme", requests: 5);
        var seconds = created.GetProperty("usage").GetProperty("seconds").GetInt64();
        var perSecond = 50; // AudioDuration.TokensPerSecond: the token budgets' count of a second
        // Seconds-only usage counts seconds x 50 prompt tokens (the translation's estimate too); the
        // three streams count vLLM's tokens.
        Assert.Equal((2 * seconds * perSecond) + (3 * streamUsage.GetProperty("prompt_tokens").GetInt64()), row.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(3 * streamUsage.GetProperty("completion_tokens").GetInt64(), row.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(1, row.GetProperty("estimated_requests").GetInt64()); // the translation: vLLM reported nothing
        Assert.Equal(5 * seconds * NanosPerSecond, CostNanos(row));
        Assert.Equal(0, row.GetProperty("errors").GetInt64());
    }

    [Fact]
    public async Task AMalformedUpload_Is400_CostsNothing_AndTheNextRequestWorks()
    {
        await using var gateway = await SimulateGateway.StartAsync(extraToml: Prices);
        using var wav = new TempDirectory();
        var path = Path.Combine(wav.Path, "clip.wav");
        await File.WriteAllBytesAsync(path, WavFile.Of(Seconds));

        // The form never closes: no "--boundary--".
        var body = Encoding.ASCII.GetBytes($"--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{TestGateway.Model}\r\n--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF");
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/audio/transcriptions") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=b0undary");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestGateway.Key);
        using var refused = await gateway.Data.SendAsync(request);
        var text = await refused.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        using (var error = JsonDocument.Parse(text))
        {
            Assert.Equal("invalid_multipart", error.RootElement.GetProperty("error").GetProperty("code").GetString());
            Assert.Contains("does not close with the boundary", error.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        var next = await Audio(gateway.Process, "transcriptions", "create", path);
        Assert.True(next.GetProperty("ok").GetBoolean(), next.ToString());

        // Two rows: the 400, which cost nothing, and the transcription.
        var row = await gateway.LedgerRowAsync("acme", requests: 2);
        Assert.Equal(1, row.GetProperty("errors").GetInt64());
        Assert.Equal((long)Seconds * NanosPerSecond, CostNanos(row));
    }

    // The row's cost in nano-USD, from its USD decimal.
    private static long CostNanos(JsonElement row) => (long)Math.Round(row.GetProperty("cost_usd").GetDecimal() * 1_000_000_000m);

    private static Task<JsonElement> Audio(GatewayProcess gateway, string api, string mode, string wavPath) => NodeClient.RunAsync(
        "audio.mjs", "openai", new Uri(gateway.DataUri!, "v1").ToString(), TestGateway.Key, TestGateway.Model, api, mode, wavPath);
}
