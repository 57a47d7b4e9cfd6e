using System.Text;
using AotProxy.Http;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

// The inspector on the Responses API's and the Messages API's bodies: their own names for the
// completion reservation, their system prompts, nothing injected for usage, and the Messages
// API's required max_tokens.
public class ApiRequestInspectorTests
{
    [Fact]
    public void Inspect_Responses_MaxOutputTokensIsTheReservationAndNothingIsInjected()
    {
        var error = Inspect("""{"model":"m","input":"Tell me a story","instructions":"Be brief","max_output_tokens":40,"max_tokens":999,"stream":true}""", EndpointKind.Responses, out var request, out _);

        Assert.Equal(InspectionError.None, error);
        Assert.Equal(("m", true, 40), (request.Model, request.Stream, request.MaxTokens));
        Assert.False(request.NeedsUsageInjection); // response.completed always carries the usage
        Assert.Equal(6, request.PromptTokens);       // "Be brief" + "Tell me a story": 23 bytes
    }

    [Fact]
    public void Inspect_ResponsesInputItems_AreSizedAsMessages()
    {
        Inspect("""{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"12345678"}]},{"type":"message","role":"user","content":"abcd"}]}""", EndpointKind.Responses, out var request, out _);

        Assert.Equal(3, request.PromptTokens);
        Assert.Equal(0, request.MaxTokens); // none asked: limits.default_max_tokens applies
    }

    [Fact]
    public void Inspect_Messages_ReadsMaxTokensAndTheSystemBlocks()
    {
        var error = Inspect("""{"model":"m","max_tokens":64,"system":[{"type":"text","text":"12345678"}],"messages":[{"role":"user","content":[{"type":"text","text":"abcd"}]}],"stream":true,"stream_options":{"include_usage":false}}""", EndpointKind.Messages, out var request, out _);

        Assert.Equal(InspectionError.None, error);
        Assert.Equal((64, 3L), (request.MaxTokens, request.PromptTokens));
        Assert.False(request.NeedsUsageInjection); // message_start and message_delta always carry it
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[]}""")]
    [InlineData("""{"model":"m","messages":[],"max_tokens":null}""")]
    [InlineData("""{"model":"m","messages":[],"max_tokens":0}""")]
    [InlineData("""{"model":"m","messages":[],"max_completion_tokens":5}""")] // not an Anthropic field
    public void Inspect_MessagesWithoutMaxTokens_IsMissingMaxTokens(string body)
    {
        Assert.Equal(InspectionError.MissingMaxTokens, Inspect(body, EndpointKind.Messages, out _, out var param));
        Assert.Equal("max_tokens", param);
        Assert.Equal(InspectionError.None, Inspect(body, EndpointKind.ChatCompletions, out _, out _)); // chat may leave it out
    }

    [Fact]
    public void Inspect_ResponsesMaxOutputTokensOfTheWrongType_NamesIt()
    {
        Assert.Equal(InspectionError.InvalidField, Inspect("""{"model":"m","input":"x","max_output_tokens":"many"}""", EndpointKind.Responses, out _, out var param));
        Assert.Equal("max_output_tokens", param);
    }

    private static InspectionError Inspect(string body, EndpointKind endpoint, out InspectedRequest request, out string? param) =>
        RequestInspector.Inspect(Encoding.UTF8.GetBytes(body), out request, out param, endpoint);
}
