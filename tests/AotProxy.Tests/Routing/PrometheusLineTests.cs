using System.Text;
using AotProxy.Routing;

namespace AotProxy.Tests.Routing;

public class PrometheusLineTests
{
    [Theory]
    [InlineData("vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0", "vllm:num_requests_running", 3.0)]
    [InlineData("process_virtual_memory_bytes 3.110516736e+010", "process_virtual_memory_bytes", 3.110516736e10)]
    [InlineData("vllm:x_created{engine=\"0\"} 1.7777579962045388e+09", "vllm:x_created", 1.7777579962045388e9)]
    [InlineData("  indented\t{a=\"b\" , c = \"d\",} \t-2.5  ", "indented", -2.5)]
    [InlineData("with_timestamp{a=\"b\"} 7 1712345678901", "with_timestamp", 7.0)]
    [InlineData("no_blank_after_labels{a=\"b\"}4", "no_blank_after_labels", 4.0)]
    [InlineData("crlf 5.0\r", "crlf", 5.0)]
    [InlineData("escaped{model_name=\"a \\\"q\\\" {b} c\\\\\",x=\"}\"} 6", "escaped", 6.0)]
    [InlineData("bucket{le=\"+Inf\"} 12.0", "bucket", 12.0)]
    public void Parse_WellFormedSample_ReadsNameAndValue(string line, string name, double value)
    {
        var kind = PrometheusLine.Parse(Encoding.UTF8.GetBytes(line), out var parsedName, out var parsedValue);

        Assert.Equal(PrometheusLineKind.Sample, kind);
        Assert.Equal(name, Encoding.UTF8.GetString(parsedName));
        Assert.Equal(value, parsedValue);
    }

    [Theory]
    [InlineData("m{engine=\"0\",model_name=\"x\"} 3.0", "engine=\"0\",model_name=\"x\"")]
    [InlineData("m { a = \"}\" , } 3.0", " a = \"}\" , ")]
    [InlineData("m{} 3.0", "")]
    [InlineData("m 3.0", "")]
    public void Parse_LabelSet_IsWhatLiesBetweenTheBraces(string line, string labels)
    {
        var kind = PrometheusLine.Parse(Encoding.UTF8.GetBytes(line), out _, out var parsedLabels, out var value);

        Assert.Equal((PrometheusLineKind.Sample, 3.0), (kind, value));
        Assert.Equal(labels, Encoding.UTF8.GetString(parsedLabels));
    }

    [Theory]
    [InlineData("NaN", double.NaN)]
    [InlineData("nan", double.NaN)]
    [InlineData("+Inf", double.PositiveInfinity)]
    [InlineData("Inf", double.PositiveInfinity)]
    [InlineData("-Inf", double.NegativeInfinity)]
    [InlineData("1e-05", 1e-05)]
    [InlineData(".5", 0.5)]
    public void TryParseValue_PrometheusSpellings(string token, double expected)
    {
        Assert.True(PrometheusLine.TryParseValue(Encoding.ASCII.GetBytes(token), out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \r")]
    [InlineData("# HELP vllm:num_requests_running Number of requests {in} \"batches\".")]
    [InlineData("# TYPE vllm:num_requests_running gauge")]
    [InlineData("  # a comment")]
    public void Parse_BlankOrComment_IsIgnored(string line)
    {
        Assert.Equal(PrometheusLineKind.Ignored, PrometheusLine.Parse(Encoding.UTF8.GetBytes(line), out _, out _));
    }

    [Theory]
    [InlineData("vllm:num_requests_running{engine=\"0\" 3.0 garbage")]
    [InlineData("vllm:num_requests_waiting{engine=\"0\",model_name=\"x\"} not-a-number")]
    [InlineData("}}}{{{ \u0001\u0002 # TYPE")]
    [InlineData("<html><head><title>502 Bad Gateway</title></head><body>")]
    [InlineData("name")]
    [InlineData("name{a=\"b\"}")]
    [InlineData("name-1")]
    [InlineData("name{a=\"unterminated} 1")]
    [InlineData("name{a=\"b\\")]
    [InlineData("name{a=b} 1")]
    [InlineData("name{=\"b\"} 1")]
    [InlineData("name{a=\"b\";c=\"d\"} 1")]
    [InlineData("name 1 2 3")]
    [InlineData("name 1 12x")]
    [InlineData("name 0x10")]
    [InlineData("9name 1")]
    public void Parse_Malformed_IsInvalid(string line)
    {
        Assert.Equal(PrometheusLineKind.Invalid, PrometheusLine.Parse(Encoding.UTF8.GetBytes(line), out _, out _));
    }
}
