using System.Text;
using AotProxy.Routing;

namespace AotProxy.Tests.Routing;

// vllm:lora_requests_info: max_lora and the running and waiting adapters, as bits of the
// worker's model list.
public class LoraRequestsInfoTests
{
    private static readonly VllmModelFilter Models = new(["base", "sql", "chat", "code"]);

    private static LoraAdapters Read(string text) => VllmMetricsReader.Read(Encoding.UTF8.GetBytes(text), Models).Lora;

    [Fact]
    public void V0Fixture_LoraOff_ReportsMaxLoraZeroAndNoAdapters()
    {
        var lora = VllmMetricsReader.Read(Fixtures.Bytes("vllm/metrics-v0-partial.txt")).Lora;

        Assert.Equal(new LoraAdapters(Reported: true, MaxLora: 0, Running: 0, Waiting: 0, RunningMask: 0, WaitingMask: 0), lora);
    }

    [Fact]
    public void V1Fixture_WithoutTheGauge_ReportsNothing()
    {
        Assert.False(VllmMetricsReader.Read(Fixtures.Bytes("vllm/metrics-v1-0.19.1.txt")).Lora.Reported);
    }

    // vLLM V1 (prometheus_client) keeps every label set the gauge was ever set with, each valued
    // the time of its last update, in labelnames order: the newest is the state, wherever it stands.
    [Fact]
    public void V1Shape_SeveralLabelSets_TheNewestWins()
    {
        var lora = Read("""
            # HELP vllm:lora_requests_info Running stats on lora requests.
            # TYPE vllm:lora_requests_info gauge
            vllm:lora_requests_info{max_lora="2",waiting_lora_adapters="",running_lora_adapters="sql"} 1.7650000000e+09
            vllm:lora_requests_info{max_lora="2",waiting_lora_adapters="code,other",running_lora_adapters="chat,sql"} 1.7650000070e+09
            vllm:lora_requests_info{max_lora="2",waiting_lora_adapters="",running_lora_adapters=""} 1.7650000030e+09
            """);

        Assert.Equal(new LoraAdapters(true, 2, Running: 2, Waiting: 2, RunningMask: 0b0110, WaitingMask: 0b1000), lora);
    }

    [Fact]
    public void AdapterNotAmongTheModels_IsCountedWithoutABit()
    {
        var lora = Read("vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"gone,sql\",waiting_lora_adapters=\"\"} 1\n");

        Assert.Equal((2, 0b0010UL), (lora.Running, lora.RunningMask));
        Assert.Equal(["sql"], LoraAdapters.Names(lora.RunningMask, Models.Models));
    }

    [Theory]
    [InlineData("vllm:lora_requests_info{max_lora=\"x\",running_lora_adapters=\"sql\",waiting_lora_adapters=\"\"} 1")]
    [InlineData("vllm:lora_requests_info{max_lora=\"-1\",running_lora_adapters=\"sql\",waiting_lora_adapters=\"\"} 1")]
    [InlineData("vllm:lora_requests_info{running_lora_adapters=\"sql\",waiting_lora_adapters=\"\"} 1")]
    [InlineData("vllm:lora_requests_info{max_lora=\"2\",waiting_lora_adapters=\"\"} 1")]
    [InlineData("vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"sql\",waiting_lora_adapters=\"\"} NaN")]
    public void Garbage_IsRejectedAndReportsNothing(string line)
    {
        var metrics = VllmMetricsReader.Read(Encoding.UTF8.GetBytes(line + "\n"), Models);

        Assert.False(metrics.Lora.Reported);
        Assert.Equal(1, metrics.RejectedValues);
    }

    [Fact]
    public void Garbage_AfterAGoodSample_KeepsTheGoodOne()
    {
        var lora = Read("""
            vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql",waiting_lora_adapters=""} 5
            vllm:lora_requests_info{max_lora="two",running_lora_adapters="chat",waiting_lora_adapters=""} 9
            """);

        Assert.Equal(0b0010UL, lora.RunningMask);
    }

    // Every cut of the body, fed in two pieces, reads as the whole: the reader waits for the
    // end of a line before it reads the gauge.
    [Fact]
    public void EveryPrefix_WaitsForTheLine()
    {
        var body = Encoding.UTF8.GetBytes("vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"chat,sql\",waiting_lora_adapters=\"code\"} 1.7e+09\n");
        for (var cut = 0; cut < body.Length; cut++)
        {
            var reader = new VllmMetricsReader(Models);
            var consumed = (int)reader.Feed(body.AsSpan(0, cut), isFinalBlock: false);
            Assert.False(reader.Result.Lora.Reported);
            reader.Feed(body.AsSpan(consumed), isFinalBlock: true);
            Assert.Equal(new LoraAdapters(true, 2, 2, 1, 0b0110, 0b1000), reader.Result.Lora);
        }
    }
}
