using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

public class VllmMetricsReaderTests
{
    private const VllmMetricFields CacheConfig = VllmMetricFields.NumGpuBlocks | VllmMetricFields.BlockSize;
    private const string V1 = "vllm/metrics-v1-0.19.1.txt";
    private const string V0 = "vllm/metrics-v0-partial.txt";
    private const string V1Model = "meta-llama/Llama-3.1-8B-Instruct";
    private const string V0Model = "Qwen/Qwen2.5-Coder-1.5B-Instruct";
    private const string V1Labels = "{engine=\"0\",model_name=\"" + V1Model + "\"}";
    private const string V0Labels = "{model_name=\"" + V0Model + "\"}";
    private const string NoFilter = "";

    [Theory]
    [InlineData(V1)]
    [InlineData(V0)]
    public void Read_RealFixture_AgreesWithARegexOverTheSameText(string fixture)
    {
        var text = Fixtures.Text(fixture);

        var metrics = VllmMetricsReader.Read(Fixtures.Bytes(fixture));

        Assert.Equal(VllmMetricsStatus.Complete, metrics.Status);
        Assert.Equal(0, metrics.InvalidLines);
        Assert.Equal(0, metrics.RejectedValues);
        Assert.Equal(text.Split('\n').Count(l => l.Length > 0 && l[0] != '#'), metrics.Samples);
        Assert.Equal(SumOf(text, "vllm:num_requests_running"), metrics.Running);
        Assert.Equal(SumOf(text, "vllm:num_requests_waiting"), metrics.Waiting);
        var kvName = fixture == V1 ? "vllm:kv_cache_usage_perc" : "vllm:gpu_cache_usage_perc";
        Assert.Equal(SumOf(text, kvName), metrics.KvCacheUsage);
        if (fixture == V1)
        {
            Assert.Equal(SumOf(text, "vllm:prefix_cache_queries_total"), metrics.PrefixCacheQueries);
            Assert.Equal(SumOf(text, "vllm:prefix_cache_hits_total"), metrics.PrefixCacheHits);
        }
    }

    [Fact]
    public void Read_V1Fixture_HasPrefixCacheCountersAndV0DoesNot()
    {
        var v1 = VllmMetricsReader.Read(Fixtures.Bytes(V1));
        var v0 = VllmMetricsReader.Read(Fixtures.Bytes(V0));

        Assert.Equal(VllmMetricFields.Load | VllmMetricFields.PrefixCacheQueries | VllmMetricFields.PrefixCacheHits | CacheConfig | VllmMetricFields.Preemptions, v1.Present);
        Assert.Equal((115898.0, 101440.0), (v1.PrefixCacheQueries, v1.PrefixCacheHits));
        Assert.Equal(VllmMetricFields.Load | CacheConfig | VllmMetricFields.Preemptions, v0.Present);
    }

    [Fact]
    public void Read_V1FixtureUnderLoadWithTwoEngines_SumsQueuesAndAveragesKvUsage()
    {
        // The idle capture reads 0 everywhere; put numbers in it, and a second data-parallel engine.
        var text = Fixtures.Text(V1)
            .Replace($"vllm:num_requests_running{V1Labels} 0.0", $"vllm:num_requests_running{V1Labels} 7.0", StringComparison.Ordinal)
            .Replace($"vllm:num_requests_waiting{V1Labels} 0.0", $"vllm:num_requests_waiting{V1Labels} 2.0", StringComparison.Ordinal)
            .Replace($"vllm:kv_cache_usage_perc{V1Labels} 0.0", $"vllm:kv_cache_usage_perc{V1Labels} 0.25", StringComparison.Ordinal);
        var engine1 = V1Labels.Replace("engine=\"0\"", "engine=\"1\"", StringComparison.Ordinal);
        text += $"vllm:num_requests_running{engine1} 5.0\nvllm:num_requests_waiting{engine1} 1.0\n" +
            $"vllm:kv_cache_usage_perc{engine1} 0.75\nvllm:prefix_cache_hits_total{engine1} 60.0\n";

        var metrics = VllmMetricsReader.Read(Encoding.UTF8.GetBytes(text));

        Assert.Equal((12.0, 3.0, 0.5), (metrics.Running, metrics.Waiting, metrics.KvCacheUsage));
        Assert.Equal(101500.0, metrics.PrefixCacheHits);
        Assert.Equal(VllmMetricsStatus.Complete, metrics.Status);
    }

    [Fact]
    public void Read_V0FixtureUnderLoad_ReadsGpuCacheUsage()
    {
        var text = Fixtures.Text(V0)
            .Replace($"vllm:gpu_cache_usage_perc{V0Labels} 0.0", $"vllm:gpu_cache_usage_perc{V0Labels} 0.375", StringComparison.Ordinal)
            .Replace($"vllm:num_requests_running{V0Labels} 0.0", $"vllm:num_requests_running{V0Labels} 4.0", StringComparison.Ordinal);

        var metrics = VllmMetricsReader.Read(Encoding.UTF8.GetBytes(text));

        Assert.Equal((4.0, 0.0, 0.375), (metrics.Running, metrics.Waiting, metrics.KvCacheUsage));
    }

    [Fact]
    public void Read_BothKvNamesAndBothPrefixNames_TheNewerNamesWin()
    {
        var metrics = Read(
            "vllm:gpu_cache_usage_perc{engine=\"0\"} 0.9\n" +
            "vllm:kv_cache_usage_perc{engine=\"0\"} 0.3\n" +
            "vllm:gpu_prefix_cache_queries_total 100\n" +
            "vllm:gpu_prefix_cache_hits_total 10\n" +
            "vllm:prefix_cache_hits_total 40\n");

        Assert.Equal(0.3, metrics.KvCacheUsage);
        Assert.Equal((100.0, 40.0), (metrics.PrefixCacheQueries, metrics.PrefixCacheHits));
        Assert.Equal(VllmMetricsStatus.Partial, metrics.Status);
    }

    [Fact]
    public void Read_NamesThatShareAPrefix_AreNotConfused()
    {
        var metrics = Read(
            "vllm:num_requests_waiting_by_reason{reason=\"capacity\"} 5.0\n" +
            "vllm:num_requests_running_total 9\n" +
            "vllm:kv_cache_usage_perc_created 1.7e+09\n" +
            "xvllm:num_requests_running 3\n" +
            "vllm:prefix_cache_queries_created 1.7e+09\n");

        Assert.Equal(VllmMetricFields.None, metrics.Present);
        Assert.Equal(VllmMetricsStatus.Invalid, metrics.Status);
        Assert.Equal(5, metrics.Samples);
    }

    [Fact]
    public void Read_NaNAndInfinity_AreRejectedForLoadAndAcceptedElsewhere()
    {
        var metrics = Read(
            "vllm:num_requests_running{engine=\"0\"} NaN\n" +
            "vllm:num_requests_running{engine=\"1\"} 2.0\n" +
            "vllm:num_requests_waiting{engine=\"0\"} +Inf\n" +
            "vllm:kv_cache_usage_perc{engine=\"0\"} -1\n" +
            "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} NaN\n" +
            "vllm:other -Inf\n");

        Assert.Equal(VllmMetricFields.Running, metrics.Present);
        Assert.Equal(2.0, metrics.Running);
        Assert.Equal(3, metrics.RejectedValues);
        Assert.Equal(0, metrics.InvalidLines);
        Assert.Equal(6, metrics.Samples);
        Assert.Equal(VllmMetricsStatus.Partial, metrics.Status);
    }

    [Fact]
    public void Read_LabelValuesWithEscapedQuotesBracesAndBlanks_StillRead()
    {
        var metrics = Read(
            "vllm:num_requests_running{model_name=\"a \\\"b\\\" {c} d\\\\\",engine=\"0\"} 3.0\n" +
            "vllm:num_requests_waiting{model_name=\"} 99 {\",engine=\"0\"} 1.0\n" +
            "vllm:kv_cache_usage_perc{model_name=\"x\\ny\",engine=\"0\",} 0.5\n");

        Assert.Equal((3.0, 1.0, 0.5), (metrics.Running, metrics.Waiting, metrics.KvCacheUsage));
        Assert.Equal(0, metrics.InvalidLines);
    }

    [Theory]
    [InlineData(V1)]
    [InlineData(V0)]
    public void Read_CrlfAndNoTrailingNewline_ReadLikeTheOriginal(string fixture)
    {
        var bytes = Fixtures.Bytes(fixture);
        var expected = VllmMetricsReader.Read(bytes);
        var text = Fixtures.Text(fixture);

        var crlf = VllmMetricsReader.Read(Encoding.UTF8.GetBytes(text.Replace("\n", "\r\n", StringComparison.Ordinal)));
        var unterminated = VllmMetricsReader.Read(bytes.AsSpan(0, bytes.Length - 1));

        Assert.Equal(expected, crlf);
        Assert.Equal(expected, unterminated);
    }

    [Fact]
    public void Read_LastLineWithoutNewline_IsRead()
    {
        Assert.Equal(3.0, Read("# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 3").Running);
        Assert.Equal(3.0, Read("vllm:num_requests_running 3\r").Running);
    }

    // Every cut of each fixture, in two ways. The line the cut falls in, with its neighbours, read
    // whole and read cut (lines are independent, so this covers each cut in its real context
    // for the cost of three lines); and the whole fixture cut there, for every cut of V0 and
    // every 61st of V1's 56,843 (all of them would take a minute of a Debug test run). Each with
    // no filter, the fixture's own model, and another model (whose series are all skipped).
    [Theory]
    [InlineData(V1, 61, NoFilter)]
    [InlineData(V1, 61, V1Model)]
    [InlineData(V1, 61, V0Model)]
    [InlineData(V0, 1, NoFilter)]
    [InlineData(V0, 1, V0Model)]
    [InlineData(V0, 1, V1Model)]
    public void Read_EverySplitPointIntoTwoSegments_EqualsTheOneSegmentResult(string fixture, int wholeFileStride, string model)
    {
        var bytes = Fixtures.Bytes(fixture);
        var filter = FilterFor(model);
        var expected = VllmMetricsReader.Read(bytes, filter);
        AssertFilteredAsExpected(fixture, model, expected);

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var (start, end) = LinesAround(bytes, cut);
            var window = bytes.AsMemory(start, end - start);
            var windowActual = VllmMetricsReader.Read(Segments.Split(window, cut - start), filter);
            var windowExpected = VllmMetricsReader.Read(window.Span, filter);
            if (windowActual != windowExpected)
            {
                Assert.Fail($"cut at {cut}: {windowActual} != {windowExpected}");
            }

            if (cut % wholeFileStride == 0 || cut == bytes.Length)
            {
                var actual = VllmMetricsReader.Read(Segments.Split(bytes, cut), filter);
                if (actual != expected)
                {
                    Assert.Fail($"cut at {cut}: {actual} != {expected}");
                }
            }
        }
    }

    // Kestrel's HttpParserTests style: feed every prefix, check that the reader stops at the last
    // whole line and waits, then feed the rest. Same windows, strides and filters as above.
    [Theory]
    [InlineData(V1, 61, NoFilter)]
    [InlineData(V1, 61, V1Model)]
    [InlineData(V1, 61, V0Model)]
    [InlineData(V0, 1, NoFilter)]
    [InlineData(V0, 1, V0Model)]
    [InlineData(V0, 1, V1Model)]
    public void Feed_EveryPrefixThenTheRest_WaitsForWholeLinesAndEqualsTheOneShotResult(string fixture, int wholeFileStride, string model)
    {
        var bytes = Fixtures.Bytes(fixture);
        var filter = FilterFor(model);
        var expected = VllmMetricsReader.Read(bytes, filter);
        AssertFilteredAsExpected(fixture, model, expected);

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var (start, end) = LinesAround(bytes, cut);
            AssertPrefixThenRest(bytes.AsSpan(start, end - start), cut - start, VllmMetricsReader.Read(bytes.AsSpan(start, end - start), filter), cut, filter);
            if (cut % wholeFileStride == 0 || cut == bytes.Length)
            {
                AssertPrefixThenRest(bytes, cut, expected, cut, filter);
            }
        }
    }

    private static void AssertPrefixThenRest(ReadOnlySpan<byte> bytes, int cut, VllmMetrics expected, int fixtureCut, VllmModelFilter filter)
    {
        var reader = new VllmMetricsReader(filter);
        var consumed = (int)reader.Feed(bytes[..cut], isFinalBlock: false);

        // A prefix is read up to its last newline and no further: the unfinished line waits.
        var expectedConsumed = bytes[..cut].LastIndexOf((byte)'\n') + 1;
        if (consumed != expectedConsumed)
        {
            Assert.Fail($"cut at {fixtureCut}: consumed {consumed}, expected {expectedConsumed}");
        }

        reader.Feed(bytes[consumed..], isFinalBlock: true);
        if (reader.Result != expected)
        {
            Assert.Fail($"cut at {fixtureCut}: {reader.Result} != {expected}");
        }
    }

    // From the start of the line before the one holding `cut` to the end of the line after it.
    private static (int Start, int End) LinesAround(byte[] bytes, int cut)
    {
        var start = cut;
        for (var newlines = 0; start > 0; start--)
        {
            if (bytes[start - 1] == (byte)'\n' && ++newlines == 2)
            {
                break;
            }
        }

        var end = cut;
        for (var newlines = 0; end < bytes.Length; end++)
        {
            if (bytes[end] == (byte)'\n' && ++newlines == 2)
            {
                end++;
                break;
            }
        }

        return (start, end);
    }

    [Fact]
    public void Read_OneByteSegmentsAndEmptySegments_EqualsTheOneSegmentResult()
    {
        var bytes = Fixtures.Bytes(V0);
        var everyByte = Enumerable.Range(1, bytes.Length - 1).ToArray();
        var withEmpty = new[] { 0, 0, 10, 10, 500, bytes.Length, bytes.Length };

        Assert.Equal(VllmMetricsReader.Read(bytes), VllmMetricsReader.Read(Segments.Split(bytes, everyByte)));
        Assert.Equal(VllmMetricsReader.Read(bytes), VllmMetricsReader.Read(Segments.Split(bytes, withEmpty)));
    }

    [Theory]
    [InlineData(V1, 1)]
    [InlineData(V1, 2)]
    [InlineData(V0, 3)]
    public void Feed_RandomReadsOfManySegments_EqualsTheOneShotResult(string fixture, int seed)
    {
        var bytes = Fixtures.Bytes(fixture);
        var random = new Random(seed);

        var actual = FeedLikeAPipe(bytes, () => random.Next(1, 700), out _);

        Assert.Equal(VllmMetricsReader.Read(bytes), actual);
    }

    [Fact]
    public void Feed_OneMegabyteLine_IsSkippedAsOneInvalidLineWithoutHoldingIt()
    {
        var huge = "vllm:num_requests_running{model_name=\"" + new string('x', 1024 * 1024) + "\"} 1.0\n";
        var bytes = Encoding.UTF8.GetBytes("vllm:num_requests_waiting 2.0\n" + huge + "vllm:num_requests_running 3.0\n");

        var oneShot = VllmMetricsReader.Read(bytes);
        var split = VllmMetricsReader.Read(Segments.Split(bytes, 100, 70_000, 1_000_000));
        var fed = FeedLikeAPipe(bytes, () => 4096, out var maxHeld);

        Assert.Equal((1, 3.0, 2.0, 2), (oneShot.InvalidLines, oneShot.Running, oneShot.Waiting, oneShot.Samples));
        Assert.Equal(oneShot, split);
        Assert.Equal(oneShot, fed);
        Assert.InRange(maxHeld, 0, VllmMetricsReader.MaxLineBytes);
    }

    [Fact]
    public void Read_OneMegabyteLineAtTheEndWithoutNewline_IsOneInvalidLine()
    {
        var bytes = Encoding.UTF8.GetBytes("vllm:num_requests_waiting 2.0\n" + new string('9', 1024 * 1024));

        var fed = FeedLikeAPipe(bytes, () => 8192, out _);

        Assert.Equal(VllmMetricsReader.Read(bytes), fed);
        Assert.Equal((1, 2.0), (fed.InvalidLines, fed.Waiting));
    }

    [Fact]
    public void Read_RandomBytes_NeverThrowsAndReadsNothing()
    {
        for (var seed = 0; seed < 200; seed++)
        {
            var random = new Random(seed);
            var bytes = new byte[random.Next(1, 8192)];
            random.NextBytes(bytes);

            var oneShot = VllmMetricsReader.Read(bytes);
            var split = VllmMetricsReader.Read(Segments.Split(bytes, bytes.Length / 3, bytes.Length / 2));

            Assert.Equal(oneShot, split);
            Assert.Equal(VllmMetricsStatus.Invalid, oneShot.Status);
            Assert.Equal(VllmMetricFields.None, oneShot.Present);
            Assert.True(oneShot.InvalidLines > 0, $"seed {seed}: no invalid line in {bytes.Length} random bytes");
        }
    }

    [Fact]
    public void Read_EveryTruncationOfASample_IsInvalidOrReadsWhatArrived()
    {
        const string Line = "vllm:num_requests_running{engine=\"0\",model_name=\"a \\\"b\\\"\"} 12.5";
        var valueAt = Line.LastIndexOf(' ') + 1;

        for (var length = 1; length <= Line.Length; length++)
        {
            var metrics = Read(Line[..length]);

            if (length <= valueAt)
            {
                Assert.Equal((VllmMetricsStatus.Invalid, 1, 0), (metrics.Status, metrics.InvalidLines, metrics.Samples));
            }
            else
            {
                // "1", "12", "12." and "12.5" are all numbers: a cut value cannot be told from a short one.
                var arrived = double.Parse(Line[valueAt..length], CultureInfo.InvariantCulture);
                Assert.Equal((VllmMetricFields.Running, arrived, 0), (metrics.Present, metrics.Running, metrics.InvalidLines));
            }
        }
    }

    [Fact]
    public void Read_EmptyOrOnlyComments_IsInvalidWithNothingCounted()
    {
        Assert.Equal(default, VllmMetricsReader.Read(ReadOnlySpan<byte>.Empty));
        var comments = Read("# HELP vllm:num_requests_running x\n# TYPE vllm:num_requests_running gauge\n\n\r\n");
        Assert.Equal((VllmMetricsStatus.Invalid, 0, 0), (comments.Status, comments.Samples, comments.InvalidLines));
    }

    [Fact]
    public void Read_HtmlErrorPageWithAlmostSamples_IsInvalid()
    {
        var metrics = Read(
            "<html><head><title>502 Bad Gateway</title></head><body>\n" +
            "vllm:num_requests_running{engine=\"0\" 3.0 garbage\n" +
            "vllm:num_requests_waiting{engine=\"0\",model_name=\"x\"} not-a-number\n" +
            "}}}{{{ \u0001\u0002 # TYPE\n</body></html>\n");

        Assert.Equal((VllmMetricsStatus.Invalid, 5, 0), (metrics.Status, metrics.InvalidLines, metrics.Samples));
    }

    private static VllmMetrics Read(string text, params string[] models) =>
        VllmMetricsReader.Read(Encoding.UTF8.GetBytes(text), new VllmModelFilter([.. models]));

    private static VllmModelFilter FilterFor(string model) => model.Length == 0 ? VllmModelFilter.All : new VllmModelFilter([model]);

    // The fixture's own model reads exactly what no filter reads; another model reads no load, and
    // only cache_config_info, which carries no model_name.
    private static void AssertFilteredAsExpected(string fixture, string model, VllmMetrics filtered)
    {
        var unfiltered = VllmMetricsReader.Read(Fixtures.Bytes(fixture));
        if (model.Length == 0 || model == (fixture == V1 ? V1Model : V0Model))
        {
            Assert.Equal(unfiltered, filtered);
        }
        else
        {
            Assert.Equal((CacheConfig, VllmMetricsStatus.Invalid), (filtered.Present, filtered.Status));
            Assert.Equal(unfiltered with { Present = CacheConfig, Running = 0, Waiting = 0, KvCacheUsage = 0, PrefixCacheQueries = 0, PrefixCacheHits = 0, Preemptions = 0, OtherModelSamples = filtered.OtherModelSamples }, filtered);
            Assert.Equal(fixture == V1 ? 6 : 4, filtered.OtherModelSamples);
        }
    }

    // What the scraper does with a PipeReader: each read appends a chunk (a new segment), Feed
    // consumes whole lines, and the unconsumed rest stays for the next read.
    private static VllmMetrics FeedLikeAPipe(byte[] bytes, Func<int> nextChunk, out long maxHeld)
    {
        var reader = default(VllmMetricsReader);
        var consumed = 0;
        var received = 0;
        var cuts = new List<int>();
        maxHeld = 0;
        while (received < bytes.Length)
        {
            received = Math.Min(bytes.Length, received + nextChunk());
            var isFinal = received == bytes.Length;
            var segmentCuts = cuts.Where(c => c > consumed && c < received).Select(c => c - consumed).ToArray();
            consumed += (int)reader.Feed(Segments.Split(bytes.AsMemory(consumed, received - consumed), segmentCuts), isFinal);
            cuts.Add(received);
            maxHeld = Math.Max(maxHeld, received - consumed);
        }

        Assert.Equal(bytes.Length, consumed);
        return reader.Result;
    }

    // An independent reading of the fixture: the sum of a metric's samples, by regex.
    private static double SumOf(string text, string name) =>
        Regex.Matches(text, "^" + Regex.Escape(name) + @"(\{[^\n]*\})? (?<value>\S+)$", RegexOptions.Multiline)
            .Sum(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));
}
