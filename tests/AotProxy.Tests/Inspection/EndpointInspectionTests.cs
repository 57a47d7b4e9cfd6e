using System.Buffers;
using System.Text;
using AotProxy.Http;
using AotProxy.Inspection;
using AotProxy.Simulator;

namespace AotProxy.Tests.Inspection;

// What the one inspection pass reads depends on the endpoint (issue 21): rerank and score bodies
// carry their prompt in query/documents and text_1/text_2, the pooling endpoints never stream,
// and the tokenizer endpoints cost no tokens.
public class EndpointInspectionTests
{
    // "what is vLLM" is 12 bytes (3 tokens), each document 8 bytes (2 tokens).
    private const string Rerank = """{"model":"m","query":"what is vLLM","documents":["doc one.","doc two."],"top_n":1}""";

    // vLLM's usage counts the query once per document (serving_score.py: one sequence per pair):
    // 2 x (12 + 8) bytes, 10 tokens, not 3 + 4.
    [Fact]
    public void Inspect_Rerank_SizesTheQueryOncePerDocument()
    {
        Assert.Equal(10, Inspect(Rerank, EndpointKind.Rerank).PromptTokens);
        Assert.Equal("m", Inspect(Rerank, EndpointKind.Rerank).Model);
    }

    [Fact]
    public void Inspect_Score_OneText1PerText2_OrEachPairOnce()
    {
        var broadcast = """{"model":"m","text_1":"what is vLLM","text_2":["doc one.","doc two."]}""";
        var zipped = """{"model":"m","text_1":["what is vLLM","what is KV"],"text_2":["doc one.","doc two."]}""";
        Assert.Equal(10, Inspect(broadcast, EndpointKind.Score).PromptTokens);
        Assert.Equal(10, Inspect(zipped, EndpointKind.Score).PromptTokens); // (12 + 10 + 8 + 8) bytes
    }

    // The reservation is what the worker will report: the simulator counts usage as vLLM does (each
    // pair one sequence), and the inspector's estimate equals it, in either field order, for a
    // string or a list on either side, and for token ids.
    [Theory]
    [InlineData(true, """{"model":"m","query":"what is vLLM","documents":["doc one.","doc two.","a longer third document"]}""")]
    [InlineData(true, """{"model":"m","documents":["doc one.","doc two."],"query":"what is the capital of France?"}""")]
    [InlineData(true, """{"model":"m","query":"q","documents":["only one document, of some length"]}""")]
    [InlineData(false, """{"model":"m","text_1":"what is vLLM","text_2":["doc one.","doc two.","doc three"]}""")]
    [InlineData(false, """{"model":"m","text_1":["first query text","second"],"text_2":["doc one.","doc two."]}""")]
    [InlineData(false, """{"model":"m","text_1":"one","text_2":"pair"}""")]
    public void Inspect_PairEstimate_EqualsTheSimulatorsVllmUsage(bool rerank, string json)
    {
        var kind = rerank ? RequestKind.Rerank : RequestKind.Score;
        var body = Encoding.UTF8.GetBytes(json);
        var parsed = RequestParser.Parse(new ReadOnlySequence<byte>(body), kind, 16, out var error);
        Assert.True(parsed is not null, error);

        Assert.Equal(parsed.PromptTokens, Inspect(json, rerank ? EndpointKind.Rerank : EndpointKind.Score).PromptTokens);
    }

    [Fact]
    public void Inspect_PairTexts_CountOnlyOnThePairEndpoints()
    {
        // A chat body's `documents` (vLLM's RAG chat templates) is no prompt text of its own.
        var chat = """{"model":"m","messages":[{"role":"user","content":"abcd"}],"documents":["eight by"],"query":"more"}""";
        Assert.Equal(1, Inspect(chat, EndpointKind.ChatCompletions).PromptTokens);
    }

    [Fact]
    public void Inspect_Rerank_KeysAffinityOnTheQuery()
    {
        var other = Rerank.Replace("doc one.", "doc six.", StringComparison.Ordinal);
        Assert.Equal(Inspect(Rerank, EndpointKind.Rerank).PrefixHash, Inspect(other, EndpointKind.Rerank).PrefixHash);
        Assert.NotEqual(0UL, Inspect(Rerank, EndpointKind.Rerank).PrefixHash);
    }

    [Theory]
    [InlineData(nameof(EndpointKind.Embeddings))]
    [InlineData(nameof(EndpointKind.Rerank))]
    [InlineData(nameof(EndpointKind.Score))]
    [InlineData(nameof(EndpointKind.Pooling))]
    [InlineData(nameof(EndpointKind.Classify))]
    [InlineData(nameof(EndpointKind.Tokenize))]
    public void Inspect_EndpointsThatDoNotGenerate_NeverStream(string endpoint)
    {
        var request = Inspect("""{"model":"m","input":"abcd","stream":true}""", Enum.Parse<EndpointKind>(endpoint));
        Assert.False(request.Stream);
        Assert.False(request.NeedsUsageInjection); // so their body is never given stream_options
    }

    [Theory]
    [InlineData(nameof(EndpointKind.Tokenize), """{"model":"m","prompt":"a prompt of some length"}""")]
    [InlineData(nameof(EndpointKind.Tokenize), """{"model":"m","messages":[{"role":"user","content":"a prompt of some length"}]}""")]
    [InlineData(nameof(EndpointKind.Detokenize), """{"model":"m","tokens":[1,2,3,4]}""")]
    public void Inspect_TokenizerEndpoints_CostNoTokens(string endpoint, string body)
    {
        var request = Inspect(body, Enum.Parse<EndpointKind>(endpoint));
        Assert.Equal(0, request.PromptTokens);
        Assert.Equal("m", request.Model);
    }

    [Fact]
    public void Inspect_TokenizerEndpoints_StillNeedAModel()
    {
        Assert.Equal(InspectionError.MissingModel, RequestInspector.Inspect(Encoding.UTF8.GetBytes("""{"prompt":"x"}"""), out _, out var param, EndpointKind.Tokenize));
        Assert.Equal("model", param);
    }

    [Fact]
    public void Traits_ThePoolingAndTokenizerEndpointsDoNotGenerate_AndOnlyTheTokenizerUsesNoTokens()
    {
        Assert.Equal(
            [EndpointKind.Embeddings, EndpointKind.Rerank, EndpointKind.Score, EndpointKind.Pooling, EndpointKind.Classify, EndpointKind.Tokenize, EndpointKind.Detokenize],
            Enum.GetValues<EndpointKind>().Where(k => !EndpointTraits.Generates(k)));
        Assert.Equal(
            [EndpointKind.Tokenize, EndpointKind.Detokenize],
            Enum.GetValues<EndpointKind>().Where(k => !EndpointTraits.UsesTokens(k)));
    }

    private static InspectedRequest Inspect(string json, EndpointKind endpoint)
    {
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(Encoding.UTF8.GetBytes(json), out var request, out _, endpoint));
        return request;
    }
}
