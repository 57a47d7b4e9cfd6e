using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

public sealed class ConfigErrorTests
{
    [Theory]
    [InlineData(3, "server.listen", "bad", "line 3: server.listen: bad")]
    [InlineData(0, "server.listen", "bad", "server.listen: bad")]
    [InlineData(4, "", "syntax", "line 4: syntax")]
    [InlineData(0, "", "cannot read", "cannot read")]
    public void ToString_LineAndKey_OmitsWhatIsUnknown(int line, string key, string message, string expected) =>
        Assert.Equal(expected, new ConfigError(line, key, message).ToString());
}
