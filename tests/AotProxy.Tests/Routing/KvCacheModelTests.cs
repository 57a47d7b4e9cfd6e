using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Tests.Routing;

public class KvCacheModelTests
{
    private const int PromptChunks = 32; // ~2,000 tokens

    // A chain of `chunks` hashes standing for one prompt; seeds tell prompts apart.
    public static ulong[] Chain(int seed, int chunks) =>
        [.. Enumerable.Range(0, chunks).Select(i => (ulong)(((long)seed << 20) + i + 1))];

    [Fact]
    public void Record_CapacityOfFourPrompts_FedSixteenRoundRobin_KeepsTheLastFour()
    {
        var model = new KvCacheModel(4 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        var prompts = Enumerable.Range(0, 16).Select(p => Chain(p, PromptChunks)).ToArray();

        for (var round = 0; round < 2; round++)
        {
            foreach (var prompt in prompts)
            {
                model.Record(prompt, 0, 0);
            }
        }

        var cached = prompts.Select(p => model.CachedChunks(p, 0)).ToArray();
        Assert.Equal(Enumerable.Repeat(0, 12), cached[..12]);
        Assert.Equal(Enumerable.Repeat(PromptChunks, 4), cached[12..]);

        // A bucket that draws more than 4 resident chunks forgets one early (~0.3% of buckets at 4x slots).
        Assert.InRange(model.ResidentTokens(0), 0.95 * 4 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk, 4 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
    }

    [Fact]
    public void ANewModel_HoldsNoTable_UntilAPromptIsRecorded_AndAnswersAsAnEmptyCache()
    {
        var model = new KvCacheModel(4 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        var prompt = Chain(7, PromptChunks);

        Assert.Equal(0, model.CachedChunks(prompt, 0));
        Assert.Equal(0, model.ResidentTokens(0));
        model.OnPreempted(0);
        Assert.Equal(0, model.Record([], 0, 0)); // a prompt shorter than a chunk
        Assert.False(model.HoldsTable);

        Assert.Equal(0, model.Record(prompt, 0, 0));

        Assert.True(model.HoldsTable);
        Assert.Equal(PromptChunks, model.CachedChunks(prompt, 0));
        Assert.Equal(PromptChunks, model.Record(prompt, 0, 0));
        model.Forget();
        Assert.False(model.HoldsTable); // a restarted worker's cache is empty again, and so is its table
        Assert.Equal(0, model.CachedChunks(prompt, 0));
    }

    [Fact]
    public void Record_AHotPromptTouchedBetweenOthers_StaysResident()
    {
        var model = new KvCacheModel(4 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        var hot = Chain(99, PromptChunks);

        for (var p = 0; p < 16; p++)
        {
            Assert.Equal(p == 0 ? 0 : PromptChunks, model.Record(hot, 0, 0)); // what the send should hit
            model.Record(Chain(p, PromptChunks), 0, 0);
        }

        Assert.Equal(PromptChunks, model.CachedChunks(hot, 0));
        Assert.Equal(0, model.CachedChunks(Chain(0, PromptChunks), 0));
    }

    [Fact]
    public void CachedChunks_SharedHead_MatchesTheLongestResidentPrefix()
    {
        var model = new KvCacheModel();
        var first = Chain(1, 5);
        var second = Chain(1, 5);
        second[3] = 777; // chained hashes: from a difference on, every later hash differs too
        second[4] = 778;

        model.Record(first, 0, 0);

        Assert.Equal(5, model.CachedChunks(first, 0));
        Assert.Equal(3, model.CachedChunks(second, 0));
        Assert.Equal(3, model.Record(second, 0, 0));
        Assert.Equal(0, model.CachedChunks(Chain(2, 5), 0));
        Assert.Equal(0, model.CachedChunks([], 0));
    }

    [Fact]
    public void CachedChunks_EntriesOlderThanTheHorizon_DoNotCount()
    {
        var model = new KvCacheModel();
        var prompt = Chain(1, 8);
        model.Record(prompt, now: 100, horizon: 0);

        Assert.Equal(8, model.CachedChunks(prompt, horizon: 100));
        Assert.Equal(0, model.CachedChunks(prompt, horizon: 101));
    }

    [Fact]
    public void Correct_FewerHitsThanPredicted_ShrinksTheWindow_MoreGrowItBack()
    {
        var model = new KvCacheModel(4 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        var prompts = Enumerable.Range(0, 4).Select(p => Chain(p, PromptChunks)).ToArray();
        foreach (var prompt in prompts)
        {
            model.Record(prompt, 0, 0);
        }

        Assert.Equal(PromptChunks, model.CachedChunks(prompts[0], 0));
        for (var i = 0; i < 10; i++)
        {
            model.Correct(reportedHits: 1000, predictedHits: 4000, learningRate: 0.2);
        }

        // The worker hit a quarter of what the model predicted: the window shrinks, the oldest prompts
        // are gone and of the newest only the head is left (a prompt's tail is evicted first).
        Assert.InRange(model.Correction, 0.1, 0.4);
        Assert.Equal(0, model.CachedChunks(prompts[0], 0));
        Assert.Equal((int)(4 * PromptChunks * model.Correction), model.CachedChunks(prompts[3], 0));

        var shrunk = model.Correction;
        model.Correct(reportedHits: 4000, predictedHits: 1000, learningRate: 0.2);
        Assert.True(model.Correction > shrunk, $"{model.Correction}");

        // Too little evidence either way changes nothing.
        var before = model.Correction;
        model.Correct(reportedHits: 10, predictedHits: 100, learningRate: 0.2);
        Assert.Equal(before, model.Correction, 6);
    }

    [Fact]
    public void OnPreempted_KeepsOnlyTheNewestChunks_ThePromptsInFlight()
    {
        var model = new KvCacheModel(4 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        var prompts = Enumerable.Range(0, 4).Select(p => Chain(p, PromptChunks)).ToArray();
        foreach (var prompt in prompts)
        {
            model.Record(prompt, 0, 0);
        }

        // In flight: more than the cache holds (as at any real preemption): nothing is evicted.
        model.OnPreempted(5 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        Assert.All(prompts, p => Assert.Equal(PromptChunks, model.CachedChunks(p, 0)));

        // In flight: one prompt's worth. Only the newest prompt stays, whole; the correction is untouched.
        model.OnPreempted(PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        Assert.Equal(PromptChunks, model.CachedChunks(prompts[3], 0));
        Assert.All(prompts[..3], p => Assert.Equal(0, model.CachedChunks(p, 0)));
        Assert.Equal(1, model.Correction);

        // The cache is as large as before: new prompts fill it again.
        model.Record(prompts[0], 0, 0);
        Assert.Equal(PromptChunks, model.CachedChunks(prompts[0], 0));
        Assert.Equal(PromptChunks, model.CachedChunks(prompts[3], 0));
    }

    [Fact]
    public void WorkerState_CapacityFromTheScrape_WinsOverConfig_AndConfigOverTheDefault()
    {
        var configured = new WorkerState(new WorkerModel("w", new Uri("http://127.0.0.1:1/"), ["m"], 8, 1, "", KvCacheTokens: 50_000), TimeProvider.System);
        var plain = new WorkerState(new WorkerModel("v", new Uri("http://127.0.0.1:2/"), ["m"], 8, 1, ""), TimeProvider.System);
        Assert.Equal(50_000, configured.Cache.CapacityTokens);
        Assert.Equal(KvCacheModel.DefaultCapacityTokens, plain.Cache.CapacityTokens);

        var scrape = default(VllmMetrics) with { Present = VllmMetricFields.Load | VllmMetricFields.NumGpuBlocks | VllmMetricFields.BlockSize, NumGpuBlocks = 1024, BlockSize = 16 };
        configured.OnScraped(scrape);
        Assert.Equal(16_384, configured.Cache.CapacityTokens);

        // A reload keeps the scraped capacity; a scrape without cache_config_info goes back to config.
        configured.Update(configured.Model with { KvCacheTokens = 60_000 });
        Assert.Equal(16_384, configured.Cache.CapacityTokens);
        configured.OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Load });
        Assert.Equal(60_000, configured.Cache.CapacityTokens);
    }

    [Fact]
    public void WorkerState_ScrapedHitsShortOfThePredicted_ShrinkTheCorrection_APreemptionEvicts()
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        var prompt = TestPool.Prompt(1);
        Scrape(worker, hits: 0, preemptions: 0);

        test.Send(0, prompt);
        test.Send(0, prompt); // predicted: 2,048 hit tokens
        Scrape(worker, hits: 0, preemptions: 0); // the worker hit none of them
        var shrunk = worker.Cache.Correction;
        Assert.True(shrunk < 1, $"{shrunk}");

        test.Send(0, prompt);
        Scrape(worker, hits: 4096, preemptions: 0); // more than predicted: it grows back toward 1
        Assert.True(worker.Cache.Correction > shrunk, $"{worker.Cache.Correction}");

        // A preemption with nothing in flight: the worker holds none of the prompts any more.
        var before = worker.Cache.Correction;
        Assert.True(worker.CachedTokens(prompt, 0) > 0);
        Scrape(worker, hits: 4096, preemptions: 3);
        Assert.Equal(0, worker.CachedTokens(prompt, 0));
        Assert.Equal(before, worker.Cache.Correction, 6);

        // A worker without hit counters keeps its correction.
        var bare = new TestPool(1);
        bare.Send(0, prompt);
        bare.Send(0, prompt);
        bare.Scrape(0, running: 0, waiting: 0);
        bare.Send(0, prompt);
        bare.Scrape(0, running: 0, waiting: 0);
        Assert.Equal(1, bare.Workers[0].Cache.Correction);
    }

    [Fact]
    public void PromptTokensInFlight_CountALeaseFromItsStartToItsEnd()
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        var prompt = TestPool.Prompt(1);
        var lease = new PrefillLease();
        lease.Start(worker, prompt, stream: true, test.Routing);
        Assert.Equal(prompt.PromptTokens, worker.PromptTokensInFlight);
        lease.OnFirstByte(TimeSpan.FromMilliseconds(50));
        Assert.Equal(prompt.PromptTokens, worker.PromptTokensInFlight); // decoding: its blocks are still held
        lease.End();
        lease.End();
        Assert.Equal(0, worker.PromptTokensInFlight);
    }

    [Theory]
    [InlineData("queries")]
    [InlineData("hits")]
    [InlineData("preemptions")]
    public void WorkerState_ACounterThatGoesBack_IsARestart_TheModelForgetsTheWorkersCache_AndItsCorrection(string restarted)
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        var prompt = TestPool.Prompt(1);
        Scrape(worker, queries: 10_000, hits: 5_000, preemptions: 4);
        test.Send(0, prompt);
        test.Send(0, prompt); // predicted: 2,048 hit tokens, of which the worker reports none
        Scrape(worker, queries: 12_048, hits: 5_000, preemptions: 4);
        Assert.True(worker.Cache.Correction < 1, $"{worker.Cache.Correction}");
        Assert.Equal(prompt.PromptTokens, worker.CachedTokens(prompt, horizon: 0));

        // One counter below its last value; the others as a restarted worker that served a few may show.
        Scrape(worker, queries: restarted == "queries" ? 512 : 12_048, hits: restarted == "hits" ? 0 : 5_000, preemptions: restarted == "preemptions" ? 0 : 4);

        Assert.Equal(0, worker.CachedTokens(prompt, horizon: 0));
        Assert.Equal(0, worker.Cache.ResidentTokens(horizon: 0));
        Assert.Equal(1, worker.Cache.Correction);

        // It learns again from there: the next send is recorded and hit.
        test.Send(0, prompt);
        Assert.Equal(prompt.PromptTokens, worker.CachedTokens(prompt, horizon: 0));
    }

    [Fact]
    public void WorkerState_CountersThatOnlyRiseOrStay_OrGoMissing_KeepTheModel()
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        var prompt = TestPool.Prompt(1);
        Scrape(worker, queries: 10_000, hits: 5_000, preemptions: 4);
        test.Send(0, prompt);
        Scrape(worker, queries: 12_048, hits: 5_000, preemptions: 4);
        Scrape(worker, queries: 12_048, hits: 5_000, preemptions: 4);
        test.Send(0, prompt);
        Scrape(worker, queries: 14_096, hits: 7_048, preemptions: 4);
        worker.OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Load }); // a scrape without the counters: no evidence
        Scrape(worker, queries: 14_096, hits: 7_048, preemptions: 4);

        Assert.Equal(prompt.PromptTokens, worker.CachedTokens(prompt, horizon: 0));
        Assert.True(worker.Cache.ResidentTokens(horizon: 0) >= prompt.PromptTokens);
    }

    [Fact]
    public async Task Forget_RacingRecordsAndLookups_NeverThrows_AndLeavesATableThatWorks()
    {
        var model = new KvCacheModel(64 * PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
        var prompts = Enumerable.Range(0, 32).Select(p => Chain(p, PromptChunks)).ToArray();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var forgets = 0;
        var readers = Enumerable.Range(0, 2).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 200_000 && Volatile.Read(ref forgets) < 2_000 && !stop.IsCancellationRequested; i++)
            {
                var prompt = prompts[(i + t) % prompts.Length];
                model.Record(prompt, 1, 0);
                Assert.InRange(model.CachedChunks(prompt, 0), 0, PromptChunks);
            }
        })).ToArray();
        while (!readers.All(r => r.IsCompleted) && forgets < 2_000)
        {
            model.Forget();
            Interlocked.Increment(ref forgets);
        }

        await Task.WhenAll(readers);
        Assert.True(forgets > 0);
        model.Forget();
        Assert.All(prompts, p => Assert.Equal(0, model.CachedChunks(p, 0)));
        model.Record(prompts[0], 1, 0);
        Assert.Equal(PromptChunks, model.CachedChunks(prompts[0], 0));
        Assert.Equal(0, model.CachedChunks(prompts[1], 0));
    }

    private static void Scrape(WorkerState worker, double queries, double hits, double preemptions) =>
        worker.OnScraped(
            default(VllmMetrics) with
            {
                Present = VllmMetricFields.Load | VllmMetricFields.PrefixCacheQueries | VllmMetricFields.PrefixCacheHits | VllmMetricFields.Preemptions,
                PrefixCacheQueries = queries,
                PrefixCacheHits = hits,
                Preemptions = preemptions,
            },
            scheduler: null,
            TimeSpan.Zero,
            learningRate: 0.2);

    private static void Scrape(WorkerState worker, double hits, double preemptions) =>
        worker.OnScraped(
            default(VllmMetrics) with { Present = VllmMetricFields.Load | VllmMetricFields.PrefixCacheHits | VllmMetricFields.Preemptions, PrefixCacheHits = hits, Preemptions = preemptions },
            scheduler: null,
            TimeSpan.Zero,
            learningRate: 0.2);
}
