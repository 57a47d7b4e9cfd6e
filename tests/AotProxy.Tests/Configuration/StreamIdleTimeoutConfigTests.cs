namespace AotProxy.Tests.Configuration;

// [forwarding] stream_idle_timeout, [[models]] (one ModelConfig per model) and [routing] warmup.
public class StreamIdleTimeoutConfigTests
{
    [Fact]
    public void Defaults_SixtySecondsForEveryModel_AndWarmupOn()
    {
        var snapshot = TestConfig.Valid("");

        Assert.Equal(TimeSpan.FromSeconds(60), snapshot.Forwarding.StreamIdleTimeoutFor("any-model"));
        Assert.True(snapshot.Routing.Warmup);
    }

    [Fact]
    public void Models_OverrideTheWindowForTheirModelOnly()
    {
        var snapshot = TestConfig.Valid("""
            [forwarding]
            stream_idle_timeout = "5s"

            [[models]]
            name = "deepseek-r1"
            stream_idle_timeout = "10m"

            [[models]]
            name = "plain"
            """);

        Assert.Equal(TimeSpan.FromMinutes(10), snapshot.Forwarding.StreamIdleTimeoutFor("deepseek-r1"));
        Assert.Equal(TimeSpan.FromSeconds(5), snapshot.Forwarding.StreamIdleTimeoutFor("plain"));
        Assert.Equal(TimeSpan.FromSeconds(5), snapshot.Forwarding.StreamIdleTimeoutFor("other"));
    }

    [Theory]
    [InlineData("[[models]]\nname = \"m\"\nstream_idle_timout = \"5s\"\n", 3, "models[0].stream_idle_timout", "unknown key")]
    [InlineData("[[models]]\nname = \"m\"\nstream_idle_timeout = \"soon\"\n", 3, "models[0].stream_idle_timeout", "not a duration")]
    [InlineData("[[models]]\nname = \"m\"\n[[models]]\nname = \"m\"\n", 4, "models[1].name", "already used by models[0]")]
    [InlineData("[[models]]\nstream_idle_timeout = \"5s\"\n", 1, "models[0].name", "non-empty name")]
    [InlineData("[forwarding]\nstream_idle_timeout = \"0s\"\n", 2, "forwarding.stream_idle_timeout", "greater than zero")]
    public void BadModelsOrWindow_IsRefusedWithItsKeyAndLine(string toml, int line, string key, string message)
    {
        var error = TestConfig.SingleError(toml);

        Assert.Equal((line, key), (error.Line, error.Key));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
