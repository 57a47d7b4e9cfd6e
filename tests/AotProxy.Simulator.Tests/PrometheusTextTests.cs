namespace AotProxy.Simulator.Tests;

public sealed class PrometheusTextTests
{
    // Each expected string is copied from the real captures in Fixtures/.
    [Theory]
    [InlineData(0.0, "0.0")]
    [InlineData(1.0, "1.0")]
    [InlineData(-1.0, "-1.0")]
    [InlineData(115898.0, "115898.0")]
    [InlineData(39.5, "39.5")]
    [InlineData(0.001, "0.001")]
    [InlineData(412.552094290033, "412.552094290033")]
    [InlineData(1777757996.204056, "1.777757996204056e+09")]
    [InlineData(1266573312.0, "1.266573312e+09")]
    [InlineData(31105167360.0, "3.110516736e+010")]
    [InlineData(1777757864.92, "1.77775786492e+09")]
    [InlineData(double.PositiveInfinity, "+Inf")]
    public void FormatValue_Double_MatchesPythonPrometheusClient(double value, string expected)
    {
        Assert.Equal(expected, PrometheusText.FormatValue(value));
    }

    [Fact]
    public void EscapeLabelValue_QuoteBackslashNewline_Escaped()
    {
        Assert.Equal("a\\\"b\\\\c\\nd", PrometheusText.EscapeLabelValue("a\"b\\c\nd"));
    }
}
