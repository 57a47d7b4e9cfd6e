using System.Text;
using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

// The model filter and cache_config_info. The split-point and every-prefix runs over both
// fixtures, with and without a filter, are in VllmMetricsReaderTests.
public class VllmMetricsReaderFilterTests
{
    private const string V1 = "vllm/metrics-v1-0.19.1.txt";
    private const string V0 = "vllm/metrics-v0-partial.txt";
    private const string V1Model = "meta-llama/Llama-3.1-8B-Instruct";
    private const string V0Model = "Qwen/Qwen2.5-Coder-1.5B-Instruct";
    private const VllmMetricFields CacheConfig = VllmMetricFields.NumGpuBlocks | VllmMetricFields.BlockSize;

    [Theory]
    [InlineData(V1, V1Model)]
    [InlineData(V0, V0Model)]
    public void Read_RealFixtureWithItsOwnModel_EqualsTheUnfilteredRead(string fixture, string model)
    {
        var bytes = Fixtures.Bytes(fixture);
        var unfiltered = VllmMetricsReader.Read(bytes);

        var own = VllmMetricsReader.Read(bytes, new VllmModelFilter([model]));
        var ownAmongOthers = VllmMetricsReader.Read(bytes, new VllmModelFilter(["other", model, "meta-llama/Llama-3.1-8B"]));

        Assert.Equal(VllmMetricsStatus.Complete, own.Status);
        Assert.Equal(unfiltered, own);
        Assert.Equal(unfiltered, ownAmongOthers);
    }

    [Theory]
    [InlineData(V1, V0Model)]
    [InlineData(V0, V1Model)]
    [InlineData(V1, "meta-llama/Llama-3.1-8B")]
    [InlineData(V1, "meta-llama/Llama-3.1-8B-Instruct ")]
    [InlineData(V0, "qwen/qwen2.5-coder-1.5b-instruct")]
    public void Read_RealFixtureWithAnotherModel_ReadsNoLoadOnlyTheCacheConfig(string fixture, string model)
    {
        var metrics = VllmMetricsReader.Read(Fixtures.Bytes(fixture), new VllmModelFilter([model]));

        Assert.Equal(VllmMetricsStatus.Invalid, metrics.Status);
        Assert.Equal(CacheConfig, metrics.Present);
        Assert.Equal((0.0, 0.0, 0.0), (metrics.Running, metrics.Waiting, metrics.KvCacheUsage));
        Assert.True(metrics.OtherModelSamples > 0);
        Assert.Equal((0, 0), (metrics.InvalidLines, metrics.RejectedValues));
    }

    [Theory]
    [InlineData(V1, 7975L, 16)]
    [InlineData(V0, 81767L, 16)]
    public void Read_RealFixture_ReadsNumGpuBlocksAndBlockSize(string fixture, long blocks, int blockSize)
    {
        var metrics = VllmMetricsReader.Read(Fixtures.Bytes(fixture));

        Assert.True(metrics.Has(CacheConfig));
        Assert.Equal((blocks, blockSize), (metrics.NumGpuBlocks, metrics.BlockSize));
    }

    [Fact]
    public void Read_TwoModelsOnOneWorker_CountsOnlyTheFilteredModels()
    {
        const string Body =
            "vllm:num_requests_running{engine=\"0\",model_name=\"a\"} 1.0\n" +
            "vllm:num_requests_running{engine=\"0\",model_name=\"b\"} 10.0\n" +
            "vllm:num_requests_running{engine=\"1\",model_name=\"a\"} 2.0\n" +
            "vllm:num_requests_waiting{engine=\"0\",model_name=\"a\"} 3.0\n" +
            "vllm:num_requests_waiting{engine=\"0\",model_name=\"b\"} 30.0\n" +
            "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"a\"} 0.2\n" +
            "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"a\"} 0.4\n" +
            "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"b\"} 0.9\n" +
            "vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"b\"} 7.0\n";

        var a = Read(Body, "a");
        var ab = Read(Body, "a", "b");
        var all = Read(Body);

        Assert.Equal((3.0, 3.0, 0.2 + 0.4), (a.Running, a.Waiting, a.KvCacheUsage * 2));
        Assert.Equal(VllmMetricFields.Load, a.Present);
        Assert.Equal(4, a.OtherModelSamples);
        Assert.Equal((13.0, 33.0, 7.0, 0), (ab.Running, ab.Waiting, ab.PrefixCacheHits, ab.OtherModelSamples));
        Assert.Equal(ab, all);
    }

    [Theory]
    [InlineData("m", "m-2")]
    [InlineData("m-2", "m")]
    [InlineData("m", "")]
    [InlineData("", "m")]
    [InlineData("M", "m")]
    public void Read_ModelNamesThatDifferOnlyAtTheEnd_DoNotMatch(string label, string model)
    {
        var metrics = Read($"vllm:num_requests_running{{model_name=\"{label}\"}} 4\n", model);

        Assert.Equal((VllmMetricFields.None, 1), (metrics.Present, metrics.OtherModelSamples));
    }

    [Theory]
    [InlineData("a \\\"b\\\" \\\\ c\\nd", "a \"b\" \\ c\nd")]  // each of the three escapes
    [InlineData("\\\\\\\\", "\\\\")]                         // two escaped backslashes
    [InlineData("\\\\n", "\\n")]                             // an escaped backslash, then n
    [InlineData("x\\y", "x\\y")]                             // an unknown escape stays as it is
    [InlineData("\\\"", "\"")]
    [InlineData("end\\\\", "end\\")]
    public void Read_EscapedModelName_MatchesTheUnescapedName(string escaped, string model)
    {
        var body = $"vllm:num_requests_running{{engine=\"0\",model_name=\"{escaped}\"}} 4\n";

        var matching = Read(body, model);
        var escapedForm = Read(body, escaped);

        Assert.Equal((VllmMetricFields.Running, 4.0, 0), (matching.Present, matching.Running, matching.OtherModelSamples));
        if (escaped != model)
        {
            Assert.Equal((VllmMetricFields.None, 1), (escapedForm.Present, escapedForm.OtherModelSamples));
        }
    }

    [Fact]
    public void Read_ModelNameInsideAnotherLabelsValue_IsNotTheModelName()
    {
        var metrics = Read(
            "vllm:num_requests_running{note=\"model_name=\\\"a\\\"\",model_name=\"b\"} 1\n" +
            "vllm:num_requests_waiting{xmodel_name=\"a\",model_name_x=\"a\",model_name=\"b\"} 2\n" +
            "vllm:kv_cache_usage_perc{note=\"model_name=\\\"b\\\"\"} 0.5\n",
            "a");

        Assert.Equal(VllmMetricFields.KvCacheUsage, metrics.Present);
        Assert.Equal(2, metrics.OtherModelSamples);
    }

    [Fact]
    public void Read_SeriesWithoutModelName_CountUnderAnyFilter()
    {
        var metrics = Read(
            "vllm:num_requests_running 1\n" +
            "vllm:num_requests_waiting{engine=\"0\"} 2\n" +
            "vllm:kv_cache_usage_perc{} 0.5\n",
            "some/model");

        Assert.Equal((VllmMetricsStatus.Complete, 1.0, 2.0, 0.5), (metrics.Status, metrics.Running, metrics.Waiting, metrics.KvCacheUsage));
    }

    [Fact]
    public void Read_LabelsWithBlanksAroundTheEqualsSign_StillFilter()
    {
        var metrics = Read(
            "vllm:num_requests_running{ engine = \"0\" , model_name = \"a\" , } 1\n" +
            "vllm:num_requests_running{model_name\t=\t\"b\"} 9\n",
            "a");

        Assert.Equal((1.0, 1), (metrics.Running, metrics.OtherModelSamples));
    }

    [Fact]
    public void Read_CacheConfigOfTwoEngines_SumsBlocksAndTakesTheLargestBlockSize()
    {
        var metrics = Read(
            "vllm:cache_config_info{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"7975\",num_gpu_blocks_override=\"None\"} 1.0\n" +
            "vllm:cache_config_info{block_size=\"32\",engine=\"1\",num_gpu_blocks=\"1000\",num_gpu_blocks_override=\"None\"} 1.0\n");

        Assert.Equal((CacheConfig, 8975L, 32), (metrics.Present, metrics.NumGpuBlocks, metrics.BlockSize));
        Assert.Equal(VllmMetricsStatus.Invalid, metrics.Status); // capacity alone is not load
    }

    [Fact]
    public void Read_CacheConfigLabelsThatAreNotCountsOrOnlyLookAlike_AreNotRead()
    {
        var none = Read("vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"None\"} 1.0\n");
        var lookAlikes = Read("vllm:cache_config_info{_block_size_resolved=\"8\",mamba_block_size=\"8\",num_gpu_blocks_override=\"100\",user_specified_block_size=\"8\"} 1.0\n");
        var notCounts = Read("vllm:cache_config_info{block_size=\"-16\",num_gpu_blocks=\"1e3\"} 1.0\nvllm:cache_config_info{block_size=\"99999999999\",num_gpu_blocks=\" 5\"} 1.0\n");

        Assert.Equal((VllmMetricFields.BlockSize, 16, 1), (none.Present, none.BlockSize, none.RejectedValues));
        Assert.Equal((VllmMetricFields.None, 0), (lookAlikes.Present, lookAlikes.RejectedValues));
        Assert.Equal((VllmMetricFields.None, 4), (notCounts.Present, notCounts.RejectedValues));
    }

    [Fact]
    public void Read_CacheConfigOfAnotherModel_IsSkipped()
    {
        const string Body =
            "vllm:cache_config_info{block_size=\"16\",model_name=\"a\",num_gpu_blocks=\"100\"} 1.0\n" +
            "vllm:cache_config_info{block_size=\"32\",model_name=\"b\",num_gpu_blocks=\"200\"} 1.0\n";

        var a = Read(Body, "a");

        Assert.Equal((100L, 16, 1), (a.NumGpuBlocks, a.BlockSize, a.OtherModelSamples));
        Assert.Equal((300L, 32), (Read(Body).NumGpuBlocks, Read(Body).BlockSize));
    }

    // Label sets built from the bytes that matter to them (quotes, backslashes, commas, braces,
    // equals signs, blanks, "model_name"), cut at random: never an exception, and the same result
    // in one segment and in three.
    [Fact]
    public void Read_RandomLabelSetsWithAFilter_NeverThrowAndSplitLikeOneSegment()
    {
        string[] pieces = ["model_name", "=", "\"", "\\", ",", "{", "}", " ", "a", "n", "engine", "num_gpu_blocks", "7"];
        string[] names = ["vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:cache_config_info"];
        var filter = new VllmModelFilter(["a", "a\"", "\\"]);
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var text = new StringBuilder();
            for (var line = 0; line < 20; line++)
            {
                text.Append(names[random.Next(names.Length)]).Append('{');
                for (var piece = random.Next(12); piece > 0; piece--)
                {
                    text.Append(pieces[random.Next(pieces.Length)]);
                }

                text.Append(random.Next(2) == 0 ? "} 1\n" : "\n");
            }

            var bytes = Encoding.UTF8.GetBytes(text.ToString());

            var oneShot = VllmMetricsReader.Read(bytes, filter);
            var split = VllmMetricsReader.Read(Segments.Split(bytes, bytes.Length / 3, bytes.Length / 2), filter);

            Assert.Equal(oneShot, split);
            Assert.Equal(20, oneShot.Samples + oneShot.InvalidLines);
        }
    }

    private static VllmMetrics Read(string text, params string[] models) =>
        VllmMetricsReader.Read(Encoding.UTF8.GetBytes(text), new VllmModelFilter([.. models]));
}
