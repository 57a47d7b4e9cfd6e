using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

public sealed class DurationTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("0.25ms", 0.25)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1h2m3s4ms", 3_723_004)]
    [InlineData("0s", 0)]
    public void TryParse_ValidText_GivesValue(string text, double milliseconds)
    {
        Assert.True(Duration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("30")]
    [InlineData("s")]
    [InlineData("-5s")]
    [InlineData("+5s")]
    [InlineData(".5s")]
    [InlineData("5.s")]
    [InlineData("5 s")]
    [InlineData(" 5s")]
    [InlineData("5S")]
    [InlineData("5sec")]
    [InlineData("5d")]
    [InlineData("1e3ms")]
    [InlineData("99999999999999999999h")]
    [InlineData("123456789012345678901s")]
    public void TryParse_InvalidText_Fails(string text) =>
        Assert.False(Duration.TryParse(text, out _));

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(250, "250ms")]
    [InlineData(1_500, "1500ms")]
    [InlineData(30_000, "30s")]
    [InlineData(90_000, "90s")]
    [InlineData(300_000, "5m")]
    [InlineData(7_200_000, "2h")]
    [InlineData(0.5, "0.5ms")]
    public void Format_Value_GivesShortestText(double milliseconds, string expected) =>
        Assert.Equal(expected, Duration.Format(TimeSpan.FromMilliseconds(milliseconds)));

    [Theory]
    [InlineData(1)]
    [InlineData(12_345)]
    [InlineData(TimeSpan.TicksPerDay * 3 + 7)]
    public void Format_ThenTryParse_RoundTrips(long ticks)
    {
        var value = TimeSpan.FromTicks(ticks);

        Assert.True(Duration.TryParse(Duration.Format(value), out var parsed));
        Assert.Equal(value, parsed);
    }
}
