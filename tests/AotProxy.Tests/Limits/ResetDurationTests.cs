using AotProxy.Limits;

namespace AotProxy.Tests.Limits;

public class ResetDurationTests
{
    [Theory]
    [InlineData(0, "0s")]
    [InlineData(0.0004, "1ms")]
    [InlineData(0.12, "120ms")]
    [InlineData(1, "1s")]
    [InlineData(1.5, "1.5s")]
    [InlineData(20, "20s")]
    [InlineData(360, "6m0s")]
    [InlineData(61.25, "1m1.25s")]
    [InlineData(52151.04, "14h29m11.04s")]
    public void Format_WritesGoDurations(double seconds, string expected) =>
        Assert.Equal(expected, ResetDuration.Format(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData(0, 1)]
    [InlineData(0.2, 1)]
    [InlineData(1, 1)]
    [InlineData(1.001, 2)]
    [InlineData(20, 20)]
    public void RetryAfterSeconds_WholeSecondsRoundedUpAtLeastOne(double seconds, int expected) =>
        Assert.Equal(expected, ResetDuration.RetryAfterSeconds(TimeSpan.FromSeconds(seconds)));
}
