using AotProxy.Configuration;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

// What a request needs of the model "auto" picks, from the inspector's one pass: tools when
// `tools` holds a tool, vision when a message has an image part.
public sealed class RequestNeedsTests
{
    [Theory]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"hi"}]}""", 0)]
    [InlineData("""{"model":"auto","tools":[],"messages":[]}""", 0)]
    [InlineData("""{"model":"auto","tools":[ ],"tool_choice":"none"}""", 0)]
    [InlineData("""{"model":"auto","tools":null}""", 0)]
    [InlineData("""{"model":"auto","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"n":1}""", 2)]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":[{"type":"text","text":"what is it?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}""", 4)]
    [InlineData("""{"tools":[{"type":"function"}],"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}""", 6)]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"image_url"}],"metadata":{"tools":[1]}}""", 0)]
    public void Needs_ToolsAndImages(string body, int expected) // ModelCapabilities: Tools 2, Vision 4
    {
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(System.Text.Encoding.UTF8.GetBytes(body), out var inspected, out _));

        Assert.Equal((ModelCapabilities)expected, inspected.Needs);
    }

    // The tools value is skipped whole: what follows it is still read.
    [Fact]
    public void Tools_AreSkippedWhole_TheKeysAfterThemStillRead()
    {
        Assert.Equal(InspectionError.None, RequestInspector.Inspect("""{"tools":[{"a":[1,{"b":2}]},{}],"max_tokens":7,"model":"auto"}"""u8, out var inspected, out _));

        Assert.Equal((7, "auto"), (inspected.MaxTokens, inspected.Model));
    }
}
