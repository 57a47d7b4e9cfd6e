using System.Net;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

// --lora-modules, --max-loras, --lora-load-ms: adapter slots, LRU eviction of an idle adapter,
// the swap cost in the loading step, lora_loads, and what /v1/models and /metrics show of them.
public sealed class LoraTests
{
    private static readonly string[] Adapters = ["a0", "a1", "a2"];

    private static (SimulatorEngine Engine, SimulatorStats Stats, TimerClock Time) Create(int maxLoras, int loadMs = 150) =>
        SimulatorEngineTests.Create(o =>
        {
            o.LoraModules = [.. Adapters];
            o.MaxLoras = maxLoras;
            o.LoraLoad = TimeSpan.FromMilliseconds(loadMs);
        });

    private static ParsedRequest For(int adapter, ulong salt)
    {
        var request = SimulatorEngineTests.Prompt(32, salt);
        request.Adapter = adapter;
        return request;
    }

    [Fact]
    public async Task Slots_Full_AWaitingAdapterIsSkippedUntilOneIsIdle_ThenTheLeastRecentIdleIsEvicted()
    {
        var (engine, stats, time) = Create(maxLoras: 2);
        await using var _ = engine;
        var a0 = engine.Submit(For(0, 1), 1000);
        var a1 = engine.Submit(For(1, 2), 1000);
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => a0.State == SequenceState.Running && a1.State == SequenceState.Running));
        Assert.Equal(2, stats.LoraLoads);

        var a2 = engine.Submit(For(2, 3), 1000);
        var plain = engine.Submit(For(-1, 4), 1000);
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => plain.State == SequenceState.Running)); // overtakes the skipped one
        Assert.Equal(SequenceState.Waiting, a2.State);
        Assert.Equal(("a0,a1", "a2"), engine.LoraAdapters());

        engine.Abort(a0); // a0 idle: the least recent without a running request
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => a2.State == SequenceState.Running));
        Assert.Equal(3, stats.LoraLoads);

        var again = engine.Submit(For(1, 5), 1000); // resident: no load
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => again.State == SequenceState.Running));
        Assert.Equal(3, stats.LoraLoads);

        var back = engine.Submit(For(0, 6), 1000); // a1 and a2 both run: no slot
        var tokens = Generated(a2);
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => Generated(a2) >= tokens + 5)); // five steps ran
        Assert.Equal(SequenceState.Waiting, back.State);
        Assert.Equal(3, stats.LoraLoads);
        engine.Abort(a1);
        engine.Abort(again);
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => back.State == SequenceState.Running));
        Assert.Equal(4, stats.LoraLoads);
        Assert.Equal(("a0,a2", string.Empty), engine.LoraAdapters());
    }

    // The loading step takes --lora-load-ms longer: the first request's first token comes after it,
    // a second request for the resident adapter's within a few steps.
    [Fact]
    public async Task SwapCost_IsInTheFirstTokenOfTheLoadingRequestOnly()
    {
        var (engine, stats, time) = Create(maxLoras: 1, loadMs: 300);
        await using var _ = engine;

        var cold = await FirstTokenAfterAsync(engine, time, For(0, 1));
        var warm = await FirstTokenAfterAsync(engine, time, For(0, 2));

        // Simulated time, to the step (TimerClock): both prefill the same 32 tokens, and the cold
        // one's step also loads the adapter.
        Assert.True(cold >= TimeSpan.FromMilliseconds(300), $"cold {cold}");
        Assert.True(warm < TimeSpan.FromMilliseconds(150), $"warm {warm}");
        Assert.InRange((cold - warm).TotalMilliseconds, 299.99, 300.01);
        Assert.Equal(1, stats.LoraLoads);
    }

    [Fact]
    public async Task Worker_ListsAdaptersServesThemAndReportsTheGauge()
    {
        await using var worker = await TestWorker.StartAsync(o =>
        {
            o.Model = "base";
            o.LoraModules = [.. Adapters];
            o.MaxLoras = 2;
            o.LoraLoad = TimeSpan.FromMilliseconds(1);
        });

        using (var models = JsonDocument.Parse(await worker.GetStringAsync("/v1/models")))
        {
            var data = models.RootElement.GetProperty("data").EnumerateArray().ToArray();
            Assert.Equal(["base", "a0", "a1", "a2"], data.Select(m => m.GetProperty("id").GetString()));
            Assert.Equal(JsonValueKind.Null, data[0].GetProperty("parent").ValueKind);
            Assert.All(data[1..], m => Assert.Equal(("base", m.GetProperty("id").GetString()), (m.GetProperty("parent").GetString(), m.GetProperty("root").GetString())));
        }

        var (ok, _) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hello", maxTokens: 4, model: "a1"));
        var (unknown, _) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hello", maxTokens: 4, model: "a9"));
        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.NotFound), (ok.StatusCode, unknown.StatusCode));
        Assert.Equal(1, worker.Stats.LoraLoads);

        using var stats = JsonDocument.Parse(await worker.GetStringAsync("/sim/stats"));
        Assert.Equal(1, stats.RootElement.GetProperty("lora_loads").GetInt64());
        var gauge = PrometheusScrape.Parse(await worker.GetStringAsync("/metrics")).Samples.Single(s => s.Name == "vllm:lora_requests_info");
        Assert.Equal(("2", "", ""), (gauge.Labels["max_lora"], gauge.Labels["running_lora_adapters"], gauge.Labels["waiting_lora_adapters"]));
        Assert.True(gauge.Value > 1.7e9); // the time of the scrape, as vLLM's set_to_current_time
    }

    [Fact]
    public async Task Worker_WithoutAdapters_HasNoGauge()
    {
        await using var worker = await TestWorker.StartAsync();

        Assert.DoesNotContain(PrometheusScrape.Parse(await worker.GetStringAsync("/metrics")).Samples, s => s.Name == "vllm:lora_requests_info");
    }

    private static async Task<TimeSpan> FirstTokenAfterAsync(SimulatorEngine engine, TimerClock time, ParsedRequest request)
    {
        var start = time.GetUtcNow();
        var sequence = engine.Submit(request, 2);
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => Generated(sequence) >= 1));
        var elapsed = time.GetUtcNow() - start;
        Assert.True(await SimulatorEngineTests.StepUntilAsync(time, () => sequence.State == SequenceState.Finished));
        return elapsed;
    }

    private static int Generated(SimulatedSequence sequence) => sequence.Progress.TryPeek(out var generated) ? generated : 0;
}
