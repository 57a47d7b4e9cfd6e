using System.Text;
using AotProxy.Http;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

// What the one inspection pass reads depends on the endpoint (issue 21): rerank and score bodies
// carry their prompt in query/documents and text_1/text_2, the pooling endpoints never stream,
// and the tokenizer endpoints cost no tokens.
public class EndpointInspectionTests
{
    // "what is vLLM" is 12 bytes (3 tokens), each document 8 bytes (2 tokens).
    private const string Rerank = """{"model":"m","query":"what is vLLM","documents":["doc one.","doc two."],"top_n":1}""";

    [Fact]
    public void Inspect_Rerank_SizesTheQueryAndTheDocuments()
    {
        Assert.Equal(3 + 4, Inspect(Rerank, EndpointKind.Rerank).PromptTokens);
        Assert.Equal("m", Inspect(Rerank, EndpointKind.Rerank).Model);
    }

    [Fact]
    public void Inspect_Score_SizesText1AndText2()
    {
        var score = """{"model":"m","text_1":"what is vLLM","text_2":["doc one.","doc two."]}""";
        Assert.Equal(3 + 4, Inspect(score, EndpointKind.Score).PromptTokens);
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
