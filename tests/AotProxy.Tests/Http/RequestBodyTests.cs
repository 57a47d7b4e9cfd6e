using System.Text;
using System.Text.Json;
using AotProxy.Http;
using AotProxy.Inspection;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Tests.Http;

// RequestBody.Apply: the body the worker gets, byte for byte (golden strings), with the usage
// splice, the engine-priority splice, or both in one copy.
public sealed class RequestBodyTests
{
    [Theory]
    [InlineData("""{"model":"m","messages":[]}""", """{"model":"m","messages":[],"priority":2}""")]
    [InlineData("""{"model":"m","x":{"y":[1,{}]}}""", """{"model":"m","x":{"y":[1,{}]},"priority":2}""")]
    [InlineData("{\"model\":\"m\"}\n", "{\"model\":\"m\",\"priority\":2}\n")]
    [InlineData("{ \"model\" : \"m\" }  \r\n\t", "{ \"model\" : \"m\" ,\"priority\":2}  \r\n\t")]
    public async Task Apply_Priority_IsTheRootsLastKey(string body, string expected)
    {
        using var request = await ReadAsync(body);

        request.Apply(default, Inspect(request).PrioritySplice, 2);

        Assert.Equal(expected, Text(request));
        using var document = JsonDocument.Parse(request.Memory);
        Assert.Equal(2, document.RootElement.GetProperty("priority").GetInt32());
    }

    // The inspector never passes an empty object on (it has no model), but the splice must still
    // write JSON for one: no comma before the only key.
    [Theory]
    [InlineData("{}", 1, "{\"priority\":4}")]
    [InlineData("{ \n}", 3, "{ \n\"priority\":4}")]
    public async Task Apply_PriorityIntoAnEmptyObject_HasNoComma(string body, int closingBrace, string expected)
    {
        using var request = await ReadAsync(body);

        request.Apply(default, new PrioritySplice(closingBrace, AfterProperty: false), 4);

        Assert.Equal(expected, Text(request));
    }

    [Fact]
    public async Task Apply_ClientSentItsOwnPriority_TheGatewaysComesLast()
    {
        using var request = await ReadAsync("""{"model":"m","priority":9,"messages":[{"role":"user","content":"{\"priority\":9}"}]}""");

        request.Apply(default, Inspect(request).PrioritySplice, 1);

        // The client's key stays; vLLM (Python's json, then pydantic) keeps the last duplicate.
        Assert.Equal("""{"model":"m","priority":9,"messages":[{"role":"user","content":"{\"priority\":9}"}],"priority":1}""", Text(request));
        // System.Text.Json's DOM agrees: with duplicate keys, GetProperty finds the last one.
        using var document = JsonDocument.Parse(request.Memory);
        Assert.Equal(1, document.RootElement.GetProperty("priority").GetInt32());
    }

    [Theory]
    [InlineData(
        """{"model":"m","stream":true,"messages":[{"role":"user","content":"}"}]}""",
        """{"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"}"}],"priority":0}""")]
    [InlineData(
        """{"model":"m","stream":true,"stream_options":{"include_usage":false},"max_tokens":5} """,
        """{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"priority":0} """)]
    [InlineData(
        """{"model":"m","stream_options":{},"stream":true}""",
        """{"model":"m","stream_options":{"include_usage":true},"stream":true,"priority":0}""")]
    public async Task Apply_UsageAndPriority_BothInOneCopy(string body, string expected)
    {
        using var request = await ReadAsync(body);
        var inspected = Inspect(request);
        Assert.True(inspected.NeedsUsageInjection);

        request.Apply(inspected.UsageSplice, inspected.PrioritySplice, 0);

        Assert.Equal(expected, Text(request));
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(request.Span, out var again, out _));
        Assert.True(again.IncludeUsage);
    }

    [Fact]
    public async Task Apply_UsageWithoutPriority_IsTheUsageSpliceAlone()
    {
        const string Body = """{"model":"m","stream":true}""";
        using var request = await ReadAsync(Body);
        var inspected = Inspect(request);
        var alone = new byte[inspected.UsageSplice.NewLength(request.Length)];
        inspected.UsageSplice.Apply(Encoding.UTF8.GetBytes(Body), alone);

        request.Apply(inspected.UsageSplice, inspected.PrioritySplice, null);

        Assert.Equal("""{"stream_options":{"include_usage":true},"model":"m","stream":true}""", Text(request));
        Assert.Equal(Encoding.UTF8.GetString(alone), Text(request));
    }

    [Theory]
    [InlineData(int.MinValue, ",\"priority\":-2147483648")]
    [InlineData(int.MaxValue, ",\"priority\":2147483647")]
    [InlineData(9, ",\"priority\":9")]
    public void Format_AnyInt_FitsMaxLength(int priority, string expected)
    {
        var destination = new byte[PrioritySplice.MaxLength];

        var written = new PrioritySplice(0, AfterProperty: true).Format(priority, destination);

        Assert.Equal(expected, Encoding.UTF8.GetString(written));
    }

    [Theory]
    [InlineData("""{"model":"m","max_tokens":1000,"messages":[]}""", """{"model":"m","max_tokens":37,"messages":[]}""")]
    [InlineData("""{"model":"m","max_tokens": 5000 ,"messages":[]}""", """{"model":"m","max_tokens": 37 ,"messages":[]}""")]
    [InlineData("""{"model":"m","max_tokens":null}""", """{"model":"m","max_tokens":37}""")]
    [InlineData("""{"model":"m","max_completion_tokens":99999,"n":1}""", """{"model":"m","max_completion_tokens":37,"n":1}""")]
    [InlineData("""{"max_tokens":8000,"model":"m","max_completion_tokens":4000}""", """{"max_tokens":37,"model":"m","max_completion_tokens":37}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"\"max_tokens\":9"}]}""", """{"model":"m","messages":[{"role":"user","content":"\"max_tokens\":9"}],"max_tokens":37}""")]
    [InlineData("{\"model\":\"m\"}\n", "{\"model\":\"m\",\"max_tokens\":37}\n")]
    public async Task Apply_CappedMaxTokens_ReplacesTheValueOrAddsTheKey(string body, string expected)
    {
        using var request = await ReadAsync(body);
        var inspected = Inspect(request);

        request.Apply(default, inspected.PrioritySplice, null, inspected.MaxTokensSplice, 37);

        Assert.Equal(expected, Text(request));
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(request.Span, out var again, out _));
        Assert.Equal(37, again.MaxTokens);
    }

    [Theory]
    [InlineData(
        """{"model":"m","stream":true,"max_tokens":500,"stream_options":{"include_usage":false}}""",
        """{"model":"m","stream":true,"max_tokens":7,"stream_options":{"include_usage":true},"priority":3}""")]
    [InlineData(
        """{"model":"m","stream_options":null,"max_completion_tokens":500,"stream":true}""",
        """{"model":"m","stream_options":{"include_usage":true},"max_completion_tokens":7,"stream":true,"priority":3}""")]
    [InlineData(
        """{"model":"m","stream":true}""",
        """{"stream_options":{"include_usage":true},"model":"m","stream":true,"max_tokens":7,"priority":3}""")]
    public async Task Apply_UsageCapAndPriority_AllInOneCopy(string body, string expected)
    {
        using var request = await ReadAsync(body);
        var inspected = Inspect(request);

        request.Apply(inspected.UsageSplice, inspected.PrioritySplice, 3, inspected.MaxTokensSplice, 7);

        Assert.Equal(expected, Text(request));
        Assert.Equal(expected.Length, request.Length);
    }

    [Fact]
    public async Task Apply_CapIntoAnEmptyObject_HasNoComma()
    {
        using var request = await ReadAsync("{}");

        request.Apply(default, new PrioritySplice(1, AfterProperty: false), 4, default, 12);

        Assert.Equal("""{"max_tokens":12,"priority":4}""", Text(request));
    }

    [Fact]
    public void FormatKey_LargestInt_FitsMaxLength()
    {
        var destination = new byte[MaxTokensSplice.MaxLength];

        Assert.Equal(",\"max_tokens\":2147483647", Encoding.UTF8.GetString(default(MaxTokensSplice).FormatKey(int.MaxValue, afterProperty: true, destination)));
        Assert.Equal(",\"max_output_tokens\":2147483647", Encoding.UTF8.GetString(new MaxTokensSplice(0, 0, 0, 0, OutputTokens: true).FormatKey(int.MaxValue, afterProperty: true, destination)));
    }

    // The tenant's salt replaces whatever the client sent as cache_salt (any JSON value, the last
    // duplicate: the one vLLM reads), or is added before the root's closing brace.
    [Theory]
    [InlineData("""{"model":"m","cache_salt":"mine","messages":[]}""", """{"model":"m","cache_salt":"SALT","messages":[]}""")]
    [InlineData("""{"model":"m","cache_salt":{"a":[1]},"n":1}""", """{"model":"m","cache_salt":"SALT","n":1}""")]
    [InlineData("""{"cache_salt":"a","model":"m","cache_salt":null}""", """{"cache_salt":"a","model":"m","cache_salt":"SALT"}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"\"cache_salt\":1"}]}""", """{"model":"m","messages":[{"role":"user","content":"\"cache_salt\":1"}],"cache_salt":"SALT"}""")]
    public async Task Apply_CacheSalt_ReplacesTheClientsOrAddsTheKey(string body, string expected)
    {
        using var request = await ReadAsync(body);
        var inspected = Inspect(request);

        request.Apply(default, inspected.PrioritySplice, null, default, null, inspected.CacheSaltSplice, "\"SALT\""u8);

        Assert.Equal(expected, Text(request));
        using var document = JsonDocument.Parse(request.Memory);
        Assert.Equal("SALT", document.RootElement.GetProperty("cache_salt").GetString());
    }

    [Theory]
    [InlineData(
        """{"model":"m","stream":true,"cache_salt":"x","max_tokens":500}""",
        """{"stream_options":{"include_usage":true},"model":"m","stream":true,"cache_salt":"SALT","max_tokens":7,"priority":3}""")]
    [InlineData(
        """{"model":"m","stream":true}""",
        """{"stream_options":{"include_usage":true},"model":"m","stream":true,"max_tokens":7,"cache_salt":"SALT","priority":3}""")]
    public async Task Apply_UsageCapSaltAndPriority_AllInOneCopy(string body, string expected)
    {
        using var request = await ReadAsync(body);
        var inspected = Inspect(request);

        request.Apply(inspected.UsageSplice, inspected.PrioritySplice, 3, inspected.MaxTokensSplice, 7, inspected.CacheSaltSplice, "\"SALT\""u8);

        Assert.Equal(expected, Text(request));
    }

    [Fact]
    public async Task Apply_CacheSaltIntoAnEmptyObject_HasNoComma()
    {
        using var request = await ReadAsync("{}");

        request.Apply(default, new PrioritySplice(1, AfterProperty: false), 4, default, null, default, "\"S\""u8);

        Assert.Equal("""{"cache_salt":"S","priority":4}""", Text(request));
    }

    // A budget's cap (budget_overrun = "cap") rewrites the Responses API's own key.
    [Theory]
    [InlineData("""{"model":"m","input":"x","max_output_tokens":500}""", """{"model":"m","input":"x","max_output_tokens":20}""")]
    [InlineData("""{"model":"m","input":"x"}""", """{"model":"m","input":"x","max_output_tokens":20}""")]
    public async Task Apply_CapOnAResponsesBody_RewritesMaxOutputTokens(string body, string expected)
    {
        using var request = await ReadAsync(body);
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(request.Span, out var inspected, out _, EndpointKind.Responses));

        request.Apply(inspected.UsageSplice, inspected.PrioritySplice, null, inspected.MaxTokensSplice, 20);

        Assert.Equal(expected, Encoding.UTF8.GetString(request.Span));
        using var document = JsonDocument.Parse(request.Memory);
        Assert.Equal(20, document.RootElement.GetProperty("max_output_tokens").GetInt32());
    }

    // An alias's served model replaces the name the client sent (the last duplicate, escaped or
    // not, wherever it is), alone or with every other edit in the same copy.
    [Theory]
    [InlineData("""{"model":"alias","messages":[]}""", """{"model":"served/m-1","messages":[]}""")]
    [InlineData("""{"messages":[{"role":"user","content":"\"model\":\"alias\""}],"model" : "al\u0069as" }""", """{"messages":[{"role":"user","content":"\"model\":\"alias\""}],"model" : "served/m-1" }""")]
    [InlineData("""{"model":"x","model":"alias"}""", """{"model":"x","model":"served/m-1"}""")]
    public async Task Apply_ServedModel_ReplacesTheAlias(string body, string expected)
    {
        using var request = await ReadAsync(body);
        var inspected = Inspect(request);

        request.Apply(default, inspected.PrioritySplice, null, modelSplice: inspected.ModelSplice, model: "\"served/m-1\""u8);

        Assert.Equal(expected, Text(request));
    }

    [Fact]
    public async Task Apply_ServedModelWithUsageCapSaltAndPriority_AllInOneCopy()
    {
        using var request = await ReadAsync("""{"cache_salt":"x","max_tokens":500,"model":"alias","stream":true}""");
        var inspected = Inspect(request);

        request.Apply(inspected.UsageSplice, inspected.PrioritySplice, 3, inspected.MaxTokensSplice, 7, inspected.CacheSaltSplice, "\"SALT\""u8, inspected.ModelSplice, "\"m\""u8);

        Assert.Equal("""{"stream_options":{"include_usage":true},"cache_salt":"SALT","max_tokens":7,"model":"m","stream":true,"priority":3}""", Text(request));
    }

    private static InspectedRequest Inspect(RequestBody body)
    {
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(body.Span, out var inspected, out _));
        return inspected;
    }

    private static string Text(RequestBody body) => Encoding.UTF8.GetString(body.Span);

    private static async Task<RequestBody> ReadAsync(string json)
    {
        var context = new DefaultHttpContext();
        context.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(json));
        var (body, tooLarge) = await RequestBody.ReadAsync(context.Request, 65536, CancellationToken.None);
        Assert.False(tooLarge);
        return body!;
    }
}
