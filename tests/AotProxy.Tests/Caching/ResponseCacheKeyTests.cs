using System.Text;
using AotProxy.Caching;
using AotProxy.Http;

namespace AotProxy.Tests.Caching;

public class ResponseCacheKeyTests
{
    private const string Model = "m";

    private const string Body = """{"model":"m","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}""";

    [Fact]
    public void KeyOrder_Whitespace_Escapes_Stream_And_User_DoNotChangeTheKey()
    {
        var key = Key(Body);
        Assert.NotNull(key);
        Assert.Equal(key, Key("""{ "messages" : [ { "content":"H\u0069", "role":"user" } ], "max_tokens":8, "temperature":0, "model":"m" }"""));
        Assert.Equal(key, Key("""{"user":"alice","model":"m","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Hi"}],"stream":false}"""));
        Assert.Equal(key, Key("""{"model":"m","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Hi"}],"stream_options":{"include_usage":true}}"""));
    }

    [Fact]
    public void Temperature_Seed_Tenant_Model_Form_Endpoint_And_Content_ChangeTheKey()
    {
        var key = Key(Body);
        string[] others =
        [
            """{"model":"m","temperature":0,"max_tokens":9,"messages":[{"role":"user","content":"Hi"}]}""",
            """{"model":"m","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Hi!"}]}""",
            """{"model":"m","temperature":0.7,"seed":1,"max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}""",
            """{"model":"m","temperature":0.7,"seed":2,"max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}""",
            """{"model":"m","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Hi"}],"stream_options":{"continuous_usage_stats":true}}""",
        ];
        var keys = others.Select(b => Key(b)).Append(key).Append(Key(Body, scope: "b")).Append(Key(Body, shared: true)).Append(Key(Body, model: "n"))
            .Append(Key(Body, form: 1)).Append(Key(Body, endpoint: EndpointKind.Completions)).ToList();
        Assert.DoesNotContain(null, keys);
        Assert.Equal(keys.Count, keys.Distinct().Count());
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[]}""")]                                   // temperature absent: vLLM samples at 1
    [InlineData("""{"model":"m","temperature":0.5,"messages":[]}""")]
    [InlineData("""{"model":"m","temperature":"0","messages":[]}""")]
    [InlineData("""{"model":"m","temperature":0,"n":2,"messages":[]}""")]
    [InlineData("""{"model":"m","temperature":0,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[]}""")]
    [InlineData("""{"model":"m","seed":3,"functions":[{"name":"f"}],"messages":[]}""")]
    [InlineData("""{"model":"m","temperature":0,"background":true,"input":"x"}""")]
    [InlineData("""[1,2]""")]
    [InlineData("""{"model":"m","temperature":0""")]
    public void NotDeterministic_OrNotAnObject_IsNotCacheable(string body) => Assert.Null(Key(body));

    [Theory]
    [InlineData("""{"model":"m","temperature":0,"tools":[],"n":1,"messages":[]}""")]
    [InlineData("""{"model":"m","temperature":0.0,"tools":null,"messages":[]}""")]
    [InlineData("""{"model":"m","seed":7,"temperature":1.2,"messages":[]}""")]
    public void Deterministic_IsCacheable(string body) => Assert.NotNull(Key(body));

    [Fact]
    public void Embeddings_AreAlwaysCacheable_OtherEndpointsNever()
    {
        const string input = """{"model":"m","input":"hello"}""";
        Assert.NotNull(Key(input, endpoint: EndpointKind.Embeddings));
        Assert.Null(Key(input, endpoint: EndpointKind.Tokenize));
        Assert.Null(Key(Body, endpoint: EndpointKind.Rerank));
    }

    // scope: tenant a's, or with shared its class's, which is also named a.
    private static UInt128? Key(string body, EndpointKind endpoint = EndpointKind.ChatCompletions, byte form = 0, string model = Model, bool shared = false, string scope = "a") =>
        ResponseCacheKey.Of(Encoding.UTF8.GetBytes(body), endpoint, form, model, shared, scope);
}
