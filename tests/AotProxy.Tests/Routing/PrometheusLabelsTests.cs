using System.Text;
using AotProxy.Routing;

namespace AotProxy.Tests.Routing;

public class PrometheusLabelsTests
{
    private const string CacheConfig =
        "vllm:cache_config_info{_block_size_resolved=\"True\",block_size=\"16\",cache_dtype=\"auto\",engine=\"0\"," +
        "mamba_block_size=\"None\",num_gpu_blocks=\"7975\",num_gpu_blocks_override=\"None\",user_specified_block_size=\"False\"} 1.0";

    [Theory]
    [InlineData(CacheConfig, "block_size", "16")]
    [InlineData(CacheConfig, "_block_size_resolved", "True")]
    [InlineData(CacheConfig, "num_gpu_blocks", "7975")]
    [InlineData(CacheConfig, "num_gpu_blocks_override", "None")]
    [InlineData(CacheConfig, "user_specified_block_size", "False")]
    [InlineData("m{a=\"x\\\"y\",b=\"2\"} 1", "a", "x\\\"y")]
    [InlineData("m{a=\"x\\\"y\",b=\"2\"} 1", "b", "2")]
    [InlineData("m{note=\"b=\\\"1\\\"\",b=\"2\"} 1", "b", "2")]
    [InlineData("m{ a = \"1\" , b\t=\t\"\" ,} 1", "b", "")]
    [InlineData("m{a=\"} 9 {\",b=\"2\"} 1", "b", "2")]
    public void TryFind_LabelInAParsedLabelSet_ReturnsItsEscapedValue(string line, string name, string value)
    {
        var labels = LabelsOf(line);

        Assert.True(PrometheusLabels.TryFind(labels, Encoding.UTF8.GetBytes(name), out var found));
        Assert.Equal(value, Encoding.UTF8.GetString(found));
    }

    [Theory]
    [InlineData(CacheConfig, "size")]
    [InlineData(CacheConfig, "num_gpu")]
    [InlineData(CacheConfig, "model_name")]
    [InlineData("m{note=\"b=\\\"1\\\"\"} 1", "b")]
    [InlineData("m 1", "a")]
    [InlineData("m{} 1", "a")]
    public void TryFind_AbsentLabel_IsNotFound(string line, string name)
    {
        Assert.False(PrometheusLabels.TryFind(LabelsOf(line), Encoding.UTF8.GetBytes(name), out _));
    }

    // Not from Parse: the bytes of a broken label set must not throw or read past the end.
    [Theory]
    [InlineData("a")]
    [InlineData("a=")]
    [InlineData("a=\"")]
    [InlineData("a=\"x\\")]
    [InlineData("a=x")]
    [InlineData("=\"x\"")]
    [InlineData("c=\"1\" d=\"2\"")]
    public void TryFind_MalformedLabelSet_IsNotFound(string labels)
    {
        Assert.False(PrometheusLabels.TryFind(Encoding.UTF8.GetBytes(labels), "b"u8, out _));
    }

    [Theory]
    [InlineData("plain", "plain", true)]
    [InlineData("plain", "plai", false)]
    [InlineData("plain", "plainer", false)]
    [InlineData("", "", true)]
    [InlineData("a\\\"b", "a\"b", true)]
    [InlineData("a\\\\b", "a\\b", true)]
    [InlineData("a\\nb", "a\nb", true)]
    [InlineData("a\\nb", "a\\nb", false)]
    [InlineData("a\\tb", "a\\tb", true)] // unknown escape: kept, backslash and all
    [InlineData("a\\tb", "a\tb", false)]
    [InlineData("a\\\\nb", "a\\nb", true)]
    [InlineData("a\\\"", "a\"x", false)]
    [InlineData("a\\\"x", "a\"", false)]
    [InlineData("xy\\\"", "x", false)]
    [InlineData("\\\\", "\\", true)]
    [InlineData("é\\\"ü", "é\"ü", true)]
    public void ValueEquals_ComparesTheUnescapedValue(string escaped, string value, bool equal)
    {
        Assert.Equal(equal, PrometheusLabels.ValueEquals(Encoding.UTF8.GetBytes(escaped), Encoding.UTF8.GetBytes(value)));
    }

    [Theory]
    [InlineData("7975", 7975L)]
    [InlineData("0", 0L)]
    [InlineData("9223372036854775807", long.MaxValue)]
    public void TryParseCount_Digits_AreACount(string text, long expected)
    {
        Assert.True(PrometheusLabels.TryParseCount(Encoding.UTF8.GetBytes(text), out var count));
        Assert.Equal(expected, count);
    }

    [Theory]
    [InlineData("None")]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData(" 1")]
    [InlineData("1.0")]
    [InlineData("1e3")]
    [InlineData("9223372036854775808")]
    public void TryParseCount_AnythingElse_IsNotACount(string text)
    {
        Assert.False(PrometheusLabels.TryParseCount(Encoding.UTF8.GetBytes(text), out _));
    }

    private static byte[] LabelsOf(string line)
    {
        Assert.Equal(PrometheusLineKind.Sample, PrometheusLine.Parse(Encoding.UTF8.GetBytes(line), out _, out var labels, out _));
        return labels.ToArray();
    }
}
