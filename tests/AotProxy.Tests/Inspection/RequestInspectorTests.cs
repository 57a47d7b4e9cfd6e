using System.Text;
using System.Text.Json;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

public class RequestInspectorTests
{
    [Fact]
    public void Inspect_ChatRequest_ReadsModelStreamAndMaxTokens()
    {
        var error = Inspect("""{"model":"m1","messages":[{"role":"user","content":"hi {\"model\":\"x\"}"}],"stream":true,"max_tokens":12}""", out var request);

        Assert.Equal(InspectionError.None, error);
        Assert.Equal("m1", request.Model);
        Assert.True(request.Stream);
        Assert.False(request.IncludeUsage);
        Assert.Equal(12, request.MaxTokens);
        Assert.True(request.NeedsUsageInjection);
    }

    [Fact]
    public void Inspect_MaxCompletionTokens_WinsOverMaxTokens()
    {
        Inspect("""{"max_tokens":5,"model":"m","max_completion_tokens":9}""", out var request);
        Assert.Equal(9, request.MaxTokens);
    }

    [Theory]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":true}}""", true)]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false}}""", false)]
    [InlineData("""{"model":"m","stream":true,"stream_options":null}""", false)]
    public void Inspect_StreamOptions_ReadsIncludeUsage(string body, bool expected)
    {
        Assert.Equal(InspectionError.None, Inspect(body, out var request));
        Assert.Equal(expected, request.IncludeUsage);
        Assert.Equal(!expected, request.NeedsUsageInjection);
    }

    [Theory]
    [InlineData("""{"model":"m","stream":true}""")]
    [InlineData("""{ "model" : "m" , "stream" : true }""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":false}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"x":1,"include_usage":null}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":null}""")]
    [InlineData("""{"stream_options":{"include_usage":false},"model":"m","stream":true}""")]
    public void UsageSplice_Apply_ProducesValidJsonWithIncludeUsageTrueAndEverythingElseKept(string body)
    {
        Assert.Equal(InspectionError.None, Inspect(body, out var request));
        var bytes = Encoding.UTF8.GetBytes(body);
        var spliced = new byte[request.UsageSplice.NewLength(bytes.Length)];
        request.UsageSplice.Apply(bytes, spliced);

        using var before = JsonDocument.Parse(bytes);
        using var after = JsonDocument.Parse(spliced);
        Assert.True(after.RootElement.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
        foreach (var property in before.RootElement.EnumerateObject().Where(p => p.Name != "stream_options"))
        {
            Assert.Equal(property.Value.GetRawText(), after.RootElement.GetProperty(property.Name).GetRawText());
        }

        if (before.RootElement.TryGetProperty("stream_options", out var options) && options.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in options.EnumerateObject().Where(p => p.Name != "include_usage"))
            {
                Assert.Equal(property.Value.GetRawText(), after.RootElement.GetProperty("stream_options").GetProperty(property.Name).GetRawText());
            }
        }

        Assert.Equal(InspectionError.None, RequestInspector.Inspect(spliced, out var again, out _));
        Assert.True(again.IncludeUsage);
    }

    [Theory]
    [InlineData("""{"model":"m"}""", 12)]
    [InlineData("{\"model\":\"m\",\"x\":{\"y\":\"}\"}} \n", 26)]
    [InlineData("{ \"model\":\"m\" \r\n}\r\n", 16)]
    public void Inspect_PrioritySplice_IsAtTheRootsClosingBrace(string body, int closingBrace)
    {
        Assert.Equal(InspectionError.None, Inspect(body, out var request));
        Assert.Equal(new PrioritySplice(closingBrace, AfterProperty: true), request.PrioritySplice);
        Assert.Equal('}', body[closingBrace]);
    }

    [Theory]
    [InlineData("", nameof(InspectionError.InvalidJson))]
    [InlineData("{", nameof(InspectionError.InvalidJson))]
    [InlineData("""{"model":"m",}""", nameof(InspectionError.InvalidJson))]
    [InlineData("""{"model":"m"} trailing""", nameof(InspectionError.InvalidJson))]
    [InlineData("""{"model":"m"}{"model":"n"}""", nameof(InspectionError.InvalidJson))]
    [InlineData("""[1,2]""", nameof(InspectionError.NotAnObject))]
    [InlineData("""{"messages":[]}""", nameof(InspectionError.MissingModel))]
    [InlineData("""{"model":""}""", nameof(InspectionError.MissingModel))]
    [InlineData("""{"model":42}""", nameof(InspectionError.InvalidField))]
    [InlineData("""{"model":"m","stream":"yes"}""", nameof(InspectionError.InvalidField))]
    [InlineData("""{"model":"m","max_tokens":-1}""", nameof(InspectionError.InvalidField))]
    [InlineData("""{"model":"m","max_tokens":"ten"}""", nameof(InspectionError.InvalidField))]
    public void Inspect_BadBodies_ReportTheRightError(string body, string expected)
    {
        Assert.Equal(expected, Inspect(body, out _).ToString());
    }

    // stream_options that vLLM refuses (its StreamOptions takes booleans or null) is not rewritten
    // into one it accepts: the body goes upstream unchanged and the worker's 400 reaches the client.
    // Rewritten, these were 200s (issue 14).
    [Theory]
    [InlineData("""{"model":"m","stream":true,"stream_options":"x"}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":[1,2]}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":1}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":false}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":"yes"}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":1}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":{}}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false,"continuous_usage_stats":"x"}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false,"include_usage":[]}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false},"stream_options":"x"}""")]
    public void Inspect_MalformedStreamOptions_AreNotSpliced(string body)
    {
        Assert.Equal(InspectionError.None, Inspect(body, out var request));
        Assert.True(request.Stream);
        Assert.False(request.IncludeUsage);
        Assert.False(request.NeedsUsageInjection);
    }

    // The last of duplicate keys decides, as in Python's json: a malformed value that a later
    // well-formed one replaces leaves the request well-formed, and the splice goes to the last.
    [Theory]
    [InlineData("""{"model":"m","stream":true,"stream_options":"x","stream_options":{"include_usage":false}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":"yes","include_usage":null}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":1,"continuous_usage_stats":false}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false,"continuous_usage_stats":true,"x":"y"}}""")]
    public void Inspect_WellFormedStreamOptions_AfterDuplicates_AreSplicedIntoValidJson(string body)
    {
        Assert.Equal(InspectionError.None, Inspect(body, out var request));
        Assert.True(request.NeedsUsageInjection);
        var bytes = Encoding.UTF8.GetBytes(body);
        var spliced = new byte[request.UsageSplice.NewLength(bytes.Length)];
        request.UsageSplice.Apply(bytes, spliced);

        Assert.Equal(InspectionError.None, RequestInspector.Inspect(spliced, out var again, out _));
        Assert.True(again.IncludeUsage);
    }

    // Invalid UTF-8 or a lone surrogate in the model: a 400 naming the field, not an
    // InvalidOperationException out of GetString (a 500 with a stack trace, issue 14). Each char of
    // a row is one byte of the model's JSON text (Latin-1), so that rows can hold invalid UTF-8.
    [Theory]
    [InlineData("\u00FF")]
    [InlineData("\u00C3(")]
    [InlineData("\u00ED\u00A0\u0080")] // a surrogate encoded as UTF-8
    [InlineData("\u00C0\u0080")]       // overlong
    [InlineData("\\ud800")]
    [InlineData("a\\uDC00")]
    [InlineData("\\ud800\\n")]
    [InlineData("\\udbff\\ud800")]
    public void Inspect_ModelThatIsNotValidText_IsInvalidTextForTheModel(string model)
    {
        byte[] body = [.. "{\"model\":\""u8, .. Encoding.Latin1.GetBytes(model), .. "\",\"messages\":[]}"u8];

        var error = RequestInspector.Inspect(body, out _, out var param);

        Assert.Equal("InvalidText", error.ToString());
        Assert.Equal("model", param);
    }

    [Fact]
    public void Inspect_ModelWithEscapes_IsUnescaped()
    {
        Assert.Equal("\U0001F600/a\"b", Inspected("""{"model":"\ud83d\uDE00\/a\"b"}""").Model);
    }

    // The same model bytes give the same string (the pool's): no string per request for the names
    // every request carries. Non-ASCII decodes as UTF-8.
    [Theory]
    [InlineData("meta-llama/Llama-3.1-8B-Instruct")]
    [InlineData("mod\u00e8le-\u6a21\u578b")]
    public void Inspect_SameModelTwice_IsTheSameString(string model)
    {
        var json = $$"""{"model":"{{model}}","messages":[]}""";
        var first = Inspected(json).Model;
        var second = Inspected(json).Model;

        Assert.Equal(model, first);
        Assert.Same(first, second);
    }

    // A name longer than any real one is decoded as it is, not pooled: a client's made-up names
    // must not fill the pool with megabytes.
    [Fact]
    public void Inspect_ModelLongerThanThePoolTakes_IsANewStringEachTime()
    {
        var model = new string('m', RequestInspector.MaxPooledModelBytes + 1);
        var json = $$"""{"model":"{{model}}"}""";
        var first = Inspected(json).Model;
        var second = Inspected(json).Model;

        Assert.Equal(model, first);
        Assert.Equal(model, second);
        Assert.NotSame(first, second);
    }

    // A key that cannot be unescaped names no field the gateway reads: it is skipped like any
    // unknown key (ValueTextEquals threw on it), and the worker sees the body as sent.
    [Theory]
    [InlineData("""{"\ud800":1,"model":"m","stream":true}""")]
    [InlineData("""{"model":"m","\udc00x":{"a":[1]},"stream":true}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"\ud800":1}}""")]
    public void Inspect_KeysThatAreNotValidText_AreSkipped(string body)
    {
        var request = Inspected(body);

        Assert.Equal("m", request.Model);
        Assert.True(request.Stream);
    }

    [Fact]
    public void Inspect_DeeplyNestedBody_IsInvalidJsonNotACrash()
    {
        var body = "{\"model\":\"m\",\"x\":" + new string('[', 5000) + new string(']', 5000) + "}";
        Assert.Equal(InspectionError.InvalidJson, Inspect(body, out _));
    }

    private static InspectionError Inspect(string body, out InspectedRequest request) =>
        RequestInspector.Inspect(Encoding.UTF8.GetBytes(body), out request, out _);

    [Fact]
    public void Inspect_PrefixHash_KeysOnThePromptsFirstKilobyte()
    {
        var system = new string('s', 2000);
        ulong Prefix(string system, string user) => Inspected($$"""{"model":"m","messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"{{user}}"}]}""").PrefixHash;

        Assert.Equal(Prefix(system, "first question"), Prefix(system, "another question"));
        Assert.NotEqual(Prefix(system, "q"), Prefix("t" + system, "q"));
        Assert.NotEqual(Prefix("short", "q1"), Prefix("short", "q2")); // short prompts: the whole prompt is the prefix
        Assert.NotEqual(0UL, Inspected("""{"model":"m","prompt":"Once upon a time"}""").PrefixHash);
        Assert.Equal(0UL, Inspected("""{"model":"m"}""").PrefixHash);
    }

    [Fact]
    public void Inspect_User_IsHashedForConsistentHashing()
    {
        var alice = Inspected("""{"model":"m","user":"alice","messages":[]}""").UserHash;

        Assert.Equal(alice, Inspected("""{"user":"alice","model":"m"}""").UserHash);
        Assert.NotEqual(alice, Inspected("""{"model":"m","user":"bob"}""").UserHash);
        Assert.Equal(0UL, Inspected("""{"model":"m","user":7}""").UserHash);
    }

    private static InspectedRequest Inspected(string json)
    {
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(System.Text.Encoding.UTF8.GetBytes(json), out var request, out _));
        return request;
    }
}
