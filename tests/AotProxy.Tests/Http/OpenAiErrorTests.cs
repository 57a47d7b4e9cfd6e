using AotProxy.Http;

namespace AotProxy.Tests.Http;

public sealed class OpenAiErrorTests
{
    [Fact]
    public void Echo_ShortText_IsQuotedWhole()
    {
        var text = new string('m', OpenAiError.MaxEchoChars);

        Assert.Same(text, OpenAiError.Echo(text));
        Assert.Equal(string.Empty, OpenAiError.Echo(null));
    }

    [Fact]
    public void Echo_LongText_IsCutWithAnEllipsis()
    {
        var text = new string('m', 1 << 20);

        var echo = OpenAiError.Echo(text);

        Assert.Equal(OpenAiError.MaxEchoChars + 1, echo.Length);
        Assert.StartsWith(text[..OpenAiError.MaxEchoChars], echo, StringComparison.Ordinal);
        Assert.EndsWith("…", echo, StringComparison.Ordinal);
    }

    [Fact]
    public void Echo_NeverCutsASurrogatePairInHalf()
    {
        var text = new string('m', OpenAiError.MaxEchoChars - 1) + "\U0001F600" + new string('m', 10);

        var echo = OpenAiError.Echo(text);

        Assert.Equal(new string('m', OpenAiError.MaxEchoChars - 1) + "…", echo);
    }
}
