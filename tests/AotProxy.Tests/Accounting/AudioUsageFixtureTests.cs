using System.Text;
using AotProxy.Accounting;
using AotProxy.Forwarding;
using AotProxy.Http;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Accounting;

// vLLM's audio answers (tests/fixtures/vllm-api/transcription*.json, translation.json,
// transcription_stream.sse) through the gateway's own readers, wherever a read splits them.
public class AudioUsageFixtureTests
{
    [Theory]
    [InlineData("transcription.json", true, 11)]
    [InlineData("translation.json", false, 0)] // vLLM writes no usage for a translation
    public void Feed_EverySplitPoint_ReadsTheSecondsOfATranscription(string fixture, bool found, long seconds)
    {
        var bytes = Fixtures.ApiBytes(fixture);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var scanner = TwoReads.Scan(bytes, cut);
            Assert.Equal(found, scanner.Found);
            Assert.Equal(found ? new Usage(0, 0, AudioSeconds: seconds) : default, found ? scanner.Usage : default);
        }
    }

    [Fact]
    public async Task Process_TranscriptionStream_ReadsItsUsageChunk_AndStripsItWhenTheGatewayAskedForIt()
    {
        var bytes = Fixtures.ApiBytes("transcription_stream.sse");
        var text = Encoding.UTF8.GetString(bytes);
        var usageChunk = text[text.IndexOf("data: {\"id\":\"transcribe-5b1c0a7e\",\"object\":\"transcription.chunk\",\"created\":1764979200,\"model\":\"openai/whisper-large-v3\",\"choices\":[],", StringComparison.Ordinal)..text.IndexOf("data: [DONE]", StringComparison.Ordinal)];
        var withoutUsage = Encoding.UTF8.GetBytes(text.Replace(usageChunk, "", StringComparison.Ordinal));
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var relay = new Relay(RelayMode.Sse, stripUsage: true, endpoint: EndpointKind.Transcriptions);
            var output = new MemoryStream();
            var client = System.IO.Pipelines.PipeWriter.Create(output);
            Assert.Empty(TwoReads.Feed(bytes, cut, (arrived, isFinal) => relay.Process(arrived, isFinal, client, out _)));
            await client.FlushAsync();
            Assert.Equal(Encoding.UTF8.GetString(withoutUsage), Encoding.UTF8.GetString(output.ToArray()));
            Assert.Equal(new Usage(4, 3), relay.Usage);
            Assert.Equal(2, relay.ContentChunks); // " And", " so"; the finish chunk's "" is no token
        }
    }
}
