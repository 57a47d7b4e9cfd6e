using System.Buffers;
using System.Text;
using AotProxy.Accounting;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Accounting;

public class UsageJsonScannerTests
{
    [Theory]
    [InlineData("openai/chat_nonstream.json", 12, 100)]
    [InlineData("openai/chat_nonstream_v0.10.json", 3606, 40)]
    [InlineData("openai/completions.json", 2, 1)]
    [InlineData("openai/completions_v0.10.json", -1, -1)]
    [InlineData("openai/embeddings.json", 8, 0)]
    public void Feed_EverySplitPoint_FindsTheRootUsage(string fixture, long prompt, long completion)
    {
        var bytes = Fixtures.Bytes(fixture);
        if (prompt < 0)
        {
            // Read the expected figures from the fixture itself with a DOM parser.
            using var doc = System.Text.Json.JsonDocument.Parse(bytes);
            prompt = doc.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt64();
            completion = doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt64();
        }

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var scanner = TwoReads.Scan(bytes, cut);
            Assert.True(scanner.Found, $"cut at {cut}");
            Assert.Equal(new Usage(prompt, completion), scanner.Usage);
        }
    }

    // No captured JSON body has non-zero details (vLLM sends "prompt_tokens_details":null), so
    // the fixture's own text is edited: the details OpenAI sends, with figures that can be told apart.
    [Theory]
    [InlineData("{\"cached_tokens\":8,\"audio_tokens\":0}", ",\"completion_tokens_details\":{\"reasoning_tokens\":60,\"audio_tokens\":0}", 8, 60)]
    [InlineData("{\"audio_tokens\":0,\"cached_tokens\":8}", "", 8, 0)]
    [InlineData("null", ",\"completion_tokens_details\":{\"accepted_prediction_tokens\":3,\"reasoning_tokens\":60}", 0, 60)]
    [InlineData("{\"cached_tokens\":null}", ",\"completion_tokens_details\":null", 0, 0)]
    public void Feed_EverySplitPoint_ReadsCachedAndReasoningTokens(string promptDetails, string completionDetails, long cached, long reasoning)
    {
        var text = Fixtures.Text("openai/chat_nonstream.json");
        Assert.Contains("\"prompt_tokens_details\":null}", text, StringComparison.Ordinal);
        var bytes = Encoding.UTF8.GetBytes(text.Replace("\"prompt_tokens_details\":null}", $"\"prompt_tokens_details\":{promptDetails}{completionDetails}}}", StringComparison.Ordinal));

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var scanner = TwoReads.Scan(bytes, cut);
            Assert.True(scanner.Found, $"cut at {cut}");
            Assert.Equal(new Usage(12, 100, cached, reasoning), scanner.Usage);
        }
    }

    // The pooling endpoints' bodies (issue 21): their prompt is all they used. Older vLLM's rerank
    // says only total_tokens, which is then the prompt.
    [Theory]
    [InlineData("rerank.json", 26)]
    [InlineData("rerank_total_only.json", 26)]
    [InlineData("score.json", 37)]
    [InlineData("pooling.json", 11)]
    [InlineData("classify.json", 20)]
    public void Feed_PoolingEndpointBodies_EverySplitPoint_FindThePromptTokens(string fixture, long prompt)
    {
        var bytes = Fixtures.ApiBytes(fixture);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var scanner = TwoReads.Scan(bytes, cut);
            Assert.True(scanner.Found, $"cut at {cut}");
            Assert.Equal(new Usage(prompt, 0), scanner.Usage);
        }
    }

    [Theory]
    [InlineData("""{"usage":{"total_tokens":30,"completion_tokens":4}}""", 26, 4)]
    [InlineData("""{"usage":{"total_tokens":30,"prompt_tokens":7}}""", 7, 0)]   // prompt_tokens, where given, wins
    [InlineData("""{"usage":{"prompt_tokens":0,"total_tokens":30}}""", 0, 0)]
    [InlineData("""{"usage":{"total_tokens":3,"completion_tokens":4}}""", 0, 4)] // never below 0
    public void Feed_TotalTokensWithoutPromptTokens_IsThePromptLessTheCompletion(string body, long prompt, long completion)
    {
        var scanner = TwoReads.Scan(System.Text.Encoding.UTF8.GetBytes(body), 5);
        Assert.Equal(new Usage(prompt, completion), scanner.Usage);
    }

    [Theory]
    [InlineData("openai/error_vllm.json")]
    [InlineData("openai/error_vllm_nested.json")]
    [InlineData("openai/models.json")]
    public void Feed_BodiesWithoutUsage_FindNothing(string fixture)
    {
        Assert.False(TwoReads.Scan(Fixtures.Bytes(fixture), 17).Found);
    }

    [Theory]
    [InlineData("tokenize.json")]
    [InlineData("detokenize.json")]
    public void Feed_TokenizerBodies_FindNothing(string fixture)
    {
        Assert.False(TwoReads.Scan(Fixtures.ApiBytes(fixture), 9).Found);
    }

    [Fact]
    public void Feed_NestedUsageKey_IsNotTheRootUsage()
    {
        var body = """{"choices":[{"usage":{"prompt_tokens":99,"completion_tokens":99}}],"usage":{"completion_tokens":4,"prompt_tokens":3,"completion_tokens_details":{"prompt_tokens":77,"cached_tokens":5},"prompt_tokens_details":{"reasoning_tokens":6,"x":{"cached_tokens":7}}}}"""u8.ToArray();
        var scanner = TwoReads.Scan(body, 40);
        Assert.True(scanner.Found);
        Assert.Equal(new Usage(3, 4), scanner.Usage); // details in the wrong place count nothing
    }

    [Fact]
    public void Feed_NotJson_GivesUpAndConsumesEverything()
    {
        var scanner = default(UsageJsonScanner);
        var html = "<html>bad gateway</html>"u8.ToArray();
        Assert.Equal(html.Length, scanner.Feed(new ReadOnlySequence<byte>(html), isFinalBlock: false));
        Assert.False(scanner.Found);
    }
}
