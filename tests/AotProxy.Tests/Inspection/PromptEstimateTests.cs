using System.Text;
using System.Text.Json;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

// The prompt estimate comes from the prompt's text (4 UTF-8 bytes of it per token, as the
// simulator counts), not from the body's size: a short chat's JSON around its text is most of
// its bytes. The expected counts below are worked out from the strings each test writes.
public class PromptEstimateTests
{
    [Fact]
    public void Inspect_ShortChat_EstimatesTheMessagesText_NotTheWholeBody()
    {
        var user = new string('u', 200);
        var system = new string('s', 40);
        var body = $$"""{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"{{user}}"}],"max_tokens":16,"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"user":"tenant-short-prompts"}""";

        var request = Inspected(body);

        Assert.Equal((240 + 3) / 4, request.PromptTokens);
        Assert.True(Encoding.UTF8.GetByteCount(body) / 4 > request.PromptTokens * 1.5, "the body is mostly JSON around the text");
    }

    [Fact]
    public void Inspect_ChatContentParts_CountOnlyTheTextParts()
    {
        var image = new string('A', 4000);
        var request = Inspected($$$"""{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"{{{new string('t', 30)}}}"},{"type":"image_url","image_url":{"url":"data:image/png;base64,{{{image}}}"}},{"type":"text","text":"{{{new string('t', 10)}}}"}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{{{new string('x', 500)}}}"}}]}]}""");

        Assert.Equal(40 / 4, request.PromptTokens);
    }

    [Fact]
    public void Inspect_EscapedText_CountsTheUnescapedUtf8Bytes()
    {
        // a, newline, b, é (2 bytes), 😀 (4 bytes), quote, backslash: 11 bytes, 3 tokens; 32 bytes raw.
        var request = Inspected("""{"model":"m","messages":[{"role":"user","content":"a\nb\u00e9\ud83d\ude00\"\\"}]}""");

        Assert.Equal((11 + 3) / 4, request.PromptTokens);
    }

    [Theory]
    [InlineData("plain", 5)]
    [InlineData("\\u0041\\u00E9\\u20ac", 1 + 2 + 3)]
    [InlineData("\\uD83D\\uDE00", 4)]                // a surrogate pair: one 4-byte character
    [InlineData("\\ud800x", 3 + 1)]                    // a lone surrogate: its replacement character
    [InlineData("\\\\\\\"\\/\\b\\f\\n\\r\\t", 8)]
    [InlineData("trailing\\", 9)]                      // never seen from the reader; no overrun either
    [InlineData("\\u12", 3)]
    public void UnescapedLength_CountsEachEscapeAsTheBytesItStandsFor(string raw, long expected)
    {
        Assert.Equal(expected, PromptSize.UnescapedLength(Encoding.UTF8.GetBytes(raw)));
    }

    [Fact]
    public void Inspect_NonAsciiText_CountsBytes_SoAScriptWithMoreTokensPerCharacterIsNotUnderestimated()
    {
        var text = string.Concat(Enumerable.Repeat("日本語", 20)); // 60 characters, 180 bytes
        var request = Inspected($$"""{"model":"m","messages":[{"role":"user","content":"{{text}}"}]}""");

        Assert.Equal(180 / 4, request.PromptTokens);
    }

    [Theory]
    [InlineData("""{"model":"m","prompt":"0123456789abcdef"}""", 4)]
    [InlineData("""{"model":"m","prompt":["0123456789abcdef","01234567"]}""", 6)]
    [InlineData("""{"model":"m","prompt":[101,2023,2003,1037,3231]}""", 5)]
    [InlineData("""{"model":"m","prompt":[[101,2023],[2003,1037,3231]]}""", 5)]
    [InlineData("""{"model":"m","input":"0123456789abcdef0"}""", 5)]
    [InlineData("""{"model":"m","input":["01234567","0123"],"encoding_format":"float"}""", 3)]
    [InlineData("""{"model":"m","input":[[1,2,3],[4]]}""", 4)]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":""}]}""", 0)]
    [InlineData("""{"model":"m","messages":[]}""", 0)]
    [InlineData("""{"model":"m"}""", 0)]
    [InlineData("""{"model":"m","messages":"not an array","prompt":{"text":"not a prompt"}}""", 0)]
    [InlineData("""{"model":"m","messages":[1,"x",null,{"content":7},{"content":{"text":"no"}}]}""", 0)]
    public void Inspect_PromptInputAndOddShapes_AreEstimatedFromTheirTextAndTokenIds(string body, long expected)
    {
        Assert.Equal(expected, Inspected(body).PromptTokens);
    }

    [Fact]
    public void Inspect_PromptEstimate_IsPartOfTheOnePass_AndKeepsThePrefixHash()
    {
        var system = new string('s', 3000);
        var body = $$"""{"model":"m","messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"q"}],"max_tokens":3}""";
        var request = Inspected(body);

        Assert.Equal((3001 + 3) / 4, request.PromptTokens);
        Assert.Equal(3, request.MaxTokens);
        // The prefix hash still keys on the raw JSON of the messages' first KiB.
        var start = body.IndexOf("[{", StringComparison.Ordinal);
        Assert.Equal(AotProxy.Routing.StableHash.Of(Encoding.UTF8.GetBytes(body).AsSpan(start, RequestInspector.PrefixBytes)), request.PrefixHash);
    }

    [Fact]
    public void Inspect_PromptEstimate_AllocatesNothingPerMessage()
    {
        static long Allocated(byte[] body)
        {
            RequestInspector.Inspect(body, out _, out _); // warm
            var before = GC.GetAllocatedBytesForCurrentThread();
            RequestInspector.Inspect(body, out _, out _);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        var message = """{"role":"user","content":[{"type":"text","text":"hello \"there\" \u00e9"}]}""";
        var one = Encoding.UTF8.GetBytes($$"""{"model":"m","messages":[{{message}}]}""");
        var many = Encoding.UTF8.GetBytes($$"""{"model":"m","messages":[{{string.Join(',', Enumerable.Repeat(message, 500))}}]}""");

        // Only the model name is a string the inspector makes.
        Assert.Equal(Allocated(one), Allocated(many));
    }

    // Mutated prompt values of every shape, walked as `messages` and as `prompt`/`input`: only
    // the reader's JsonException (which Inspect turns into InvalidJson) may come out, the reader
    // ends on the value's last token as Skip would, and an estimate never exceeds the value's
    // bytes (text is at most its bytes, a token id at least a digit and a comma).
    [Fact]
    public void PromptSize_MutatedValues_ThrowOnlyJsonExceptions_AndStayWithinTheValue()
    {
        byte[][] seeds =
        [
            .. new[]
            {
                """[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"caf\u00e9 \ud83d\ude00 \"q\""},{"type":"image_url","image_url":{"url":"data:x"}}]}]""",
                """[{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]},{"role":"user","content":"x\ny"}]""",
                """["one","two"]""",
                """[[1,2,3],[4,5]]""",
                """"\n\t\\ text \u20ac\"""",
                """[{"\ud800":"lone"},{"content":{"text":"no"}},7,null]""",
            }.Select(Encoding.UTF8.GetBytes),
        ];

        var inputs = AotProxy.Tests.Support.Fuzz.Run(seeds, value =>
        {
            foreach (var messages in new[] { true, false })
            {
                var reader = new Utf8JsonReader(value, new JsonReaderOptions { MaxDepth = 64 });
                var size = default(PromptSize);
                try
                {
                    if (!reader.Read())
                    {
                        continue;
                    }

                    var depth = reader.CurrentDepth;
                    if (messages)
                    {
                        size.AddMessages(ref reader);
                    }
                    else
                    {
                        size.AddInputs(ref reader);
                    }

                    Assert.Equal(depth, reader.CurrentDepth);
                }
                catch (JsonException)
                {
                    continue;
                }

                Assert.InRange(size.Tokens, 0, value.Length);
            }
        });

        Assert.True(inputs > seeds.Length);
    }

    private static InspectedRequest Inspected(string json)
    {
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(Encoding.UTF8.GetBytes(json), out var request, out _));
        return request;
    }
}
