using AotProxy.Http;

namespace AotProxy.Tests.Http;

public sealed class MillisecondsTextTests
{
    [Theory]
    [InlineData(0, "0")]
    [InlineData(1, "1")]                    // 100 ns: any wait says at least 1
    [InlineData(10_000, "1")]               // 1 ms exactly
    [InlineData(10_001, "2")]
    [InlineData(3_004_000, "301")]
    [InlineData(99_990_000, "9999")]        // the last cached value
    [InlineData(100_000_000, "10000")]      // formatted each time
    [InlineData(-5, "0")]
    public void Whole_RoundsUpToAWholeMillisecond(long ticks, string expected) =>
        Assert.Equal(expected, MillisecondsText.Whole(TimeSpan.FromTicks(ticks)));

    [Theory]
    [InlineData(0, "0.000")]
    [InlineData(1, "0.001")]                // 100 ns: rounded up to a whole µs
    [InlineData(1_830, "0.183")]
    [InlineData(12_340, "1.234")]
    [InlineData(99_990, "9.999")]           // the last cached value
    [InlineData(1_234_567_890, "123456.789")]
    [InlineData(-5, "0.000")]
    public void Micros_IsMillisecondsWithThreeDecimals_RoundedUpToAMicrosecond(long ticks, string expected) =>
        Assert.Equal(expected, MillisecondsText.Micros(TimeSpan.FromTicks(ticks)));

    // The header values of requests in the usual range cost no allocation once seen.
    [Fact]
    public void WholeAndMicros_InTheirCachedRange_AllocateNothingOnceSeen()
    {
        for (var i = 0; i < 2; i++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var ms = 0; ms < 9_999; ms += 7)
            {
                MillisecondsText.Whole(TimeSpan.FromMilliseconds(ms));
                MillisecondsText.Micros(TimeSpan.FromMicroseconds(ms));
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(i == 0 ? allocated > 0 : allocated == 0, $"round {i}: {allocated} B");
        }
    }
}
