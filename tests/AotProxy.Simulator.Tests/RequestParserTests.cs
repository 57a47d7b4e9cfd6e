using System.Buffers;
using System.Text;

namespace AotProxy.Simulator.Tests;

public sealed class RequestParserTests
{
    [Fact]
    public void Parse_ChatMessage_TokensAreRenderedBytesOverFour()
    {
        // Rendered as "user\nabcdefgh\n": 14 bytes, ceil(14 / 4) = 4 tokens.
        var request = Parse("""{"messages":[{"role":"user","content":"abcdefgh"}]}""", RequestKind.Chat);

        Assert.Equal(4, request.PromptTokens);
        Assert.Empty(request.BlockHashes);
    }

    [Fact]
    public void Parse_ContentParts_CountsOnlyTextParts()
    {
        var plain = Parse("""{"messages":[{"role":"user","content":"hello world"}]}""", RequestKind.Chat);
        var parts = Parse("""{"messages":[{"role":"user","content":[{"type":"text","text":"hello "},{"type":"image_url","image_url":{"url":"http://x/y.png"}},{"type":"text","text":"world"}]}]}""", RequestKind.Chat);

        Assert.Equal(plain.PromptTokens, parts.PromptTokens);
        Assert.Equal(plain.PromptHash, parts.PromptHash);
    }

    [Fact]
    public void Parse_EscapedString_HashesUnescapedText()
    {
        var escaped = Parse("""{"prompt":"caf\u00e9 \"q\""}""", RequestKind.Completion);
        var raw = Parse("{\"prompt\":\"café \\\"q\\\"\"}", RequestKind.Completion);

        Assert.Equal(raw.PromptHash, escaped.PromptHash);
    }

    [Fact]
    public void Parse_TokenIdPrompt_CountsOneTokenPerId()
    {
        var request = Parse("""{"prompt":[101,2023,2003,1037,3231],"max_tokens":3}""", RequestKind.Completion);

        Assert.Equal(5, request.PromptTokens);
        Assert.Equal(3, request.ResolveMaxTokens(64));
    }

    [Fact]
    public void Parse_StreamOptionsAndUnknownFields_ReadsWhatMattersSkipsTheRest()
    {
        var request = Parse("""{"temperature":0.7,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"x","name":"bob"}],"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":false},"seed":7,"ignore_eos":true,"model":"m"}""", RequestKind.Chat);

        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
        Assert.True(request.IgnoreEos);
        Assert.Equal(7, request.Seed);
        Assert.Equal("m", request.Model);
    }

    [Fact]
    public void Parse_LongPrompt_OneChainedHashPerFullBlock()
    {
        var request = Parse($$"""{"prompt":"{{new string('a', 64 * 5 + 10)}}"}""", RequestKind.Completion);

        Assert.Equal(5, request.BlockHashes.Length);
        Assert.Equal(5, request.BlockHashes.Distinct().Count());
        Assert.Equal(((64 * 5) + 10 + 3) / 4, request.PromptTokens);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(64)]
    public void Parse_BodySplitAcrossSegments_SameResultAsContiguous(int segmentSize)
    {
        var json = $$"""{"model":"m","messages":[{"role":"system","content":"{{new string('s', 300)}}"},{"role":"user","content":"caf\u00e9 and more"}],"max_tokens":12}""";
        var bytes = Encoding.UTF8.GetBytes(json);
        var whole = RequestParser.Parse(new ReadOnlySequence<byte>(bytes), RequestKind.Chat, 16, out _)!;

        var split = RequestParser.Parse(BufferSegment.Split(bytes, segmentSize), RequestKind.Chat, 16, out var error);

        Assert.Null(error);
        Assert.Equal((whole.PromptTokens, whole.PromptHash, whole.MaxTokens), (split!.PromptTokens, split.PromptHash, split.MaxTokens));
        Assert.Equal(whole.BlockHashes, split.BlockHashes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]")]
    [InlineData("{\"messages\":\"hi\"}")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":\"yes\"}")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1.5}")]
    public void Parse_MalformedOrWrongTypes_ReturnsError(string json)
    {
        var request = RequestParser.Parse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)), RequestKind.Chat, 16, out var error);

        Assert.Null(request);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Parse_EmbeddingInputs_OneHashPerItem()
    {
        var request = Parse("""{"input":["a","b",[1,2,3]]}""", RequestKind.Embedding);

        Assert.Equal(3, request.InputHashes.Count);
        Assert.Equal(3, request.InputHashes.Distinct().Count());
    }

    [Theory]
    [InlineData("""{"prompt":"x"}""", 0)]
    [InlineData("""{"prompt":"x","priority":4}""", 4)]
    [InlineData("""{"priority":9,"prompt":"x","priority":-2}""", -2)]
    public void Parse_Priority_DefaultsToZeroAndTheLastDuplicateWins(string json, int expected)
    {
        Assert.Equal(expected, Parse(json, RequestKind.Completion).Priority);
    }

    private static ParsedRequest Parse(string json, RequestKind kind)
    {
        var request = RequestParser.Parse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)), kind, 16, out var error);
        Assert.True(request is not null, error);
        return request;
    }
}
