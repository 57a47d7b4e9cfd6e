using AotProxy.Routing;
using AotProxy.Routing.Policies;

namespace AotProxy.Tests.Routing.Policies;

public class PolicyTests
{
    [Fact]
    public void RoundRobin_CyclesAndSkipsDrainingAndTriedWorkers()
    {
        var test = new TestPool(3);
        var policy = new RoundRobinPolicy();

        Assert.Equal([0, 1, 2, 0, 1, 2], Enumerable.Range(0, 6).Select(_ => policy.Pick(test.Pool, test.Context())));

        test.Workers[1].Draining = true;
        var picks = Enumerable.Range(0, 30).Select(_ => policy.Pick(test.Pool, test.Context())).ToArray();
        Assert.Equal([0, 2], picks.Distinct().Order()); // the skipped worker's turn goes to the next one
        Assert.Equal(10, picks.Count(p => p == 0));
        Assert.All(Enumerable.Range(0, 4), _ => Assert.Equal(2, policy.Pick(test.Pool, test.Context(excluded: 1UL << 0))));
        Assert.Equal(-1, policy.Pick(test.Pool, test.Context(excluded: 0b101)));
    }

    [Fact]
    public void WeightedRoundRobin_IsSmoothAsNginx()
    {
        var test = new TestPool(3, weights: [5, 1, 1]);
        var policy = new WeightedRoundRobinPolicy();

        var picks = Enumerable.Range(0, 700).Select(_ => policy.Pick(test.Pool, test.Context())).ToArray();

        Assert.Equal([0, 0, 1, 0, 2, 0, 0], picks[..7]);
        Assert.Equal([500, 100, 100], Enumerable.Range(0, 3).Select(w => picks.Count(p => p == w)));
    }

    [Fact]
    public void WeightedSchedule_HugeWeights_AreScaledKeepingTheirRatio()
    {
        var test = new TestPool(2, weights: [3_000_000, 1_000_000]);

        var schedule = test.Pool.WeightedSchedule;

        Assert.InRange(schedule.Length, 1, SmoothWeightedSchedule.MaxLength);
        Assert.Equal(3.0, (double)schedule.Count(i => i == 0) / schedule.Count(i => i == 1), 2);
    }

    [Fact]
    public void LeastConnections_PicksTheFewestInFlight()
    {
        var test = new TestPool(3);
        test.InFlight(0, 4);
        test.InFlight(1, 1);
        test.InFlight(2, 2);

        Assert.All(Enumerable.Range(0, 10), _ => Assert.Equal(1, new LeastConnectionsPolicy().Pick(test.Pool, test.Context())));
    }

    [Fact]
    public void LeastQueue_CountsRequestsSentSinceTheScrape()
    {
        var test = new TestPool(3);
        test.Scrape(0, running: 8, waiting: 3);
        test.Scrape(1, running: 8, waiting: 0);
        test.Scrape(2, running: 8, waiting: 5);
        var policy = new LeastQueuePolicy();

        Assert.Equal(1, policy.Pick(test.Pool, test.Context()));
        test.InFlight(1, 4); // sent since the scrape: w1 now has 4 "waiting"

        Assert.Equal(0, policy.Pick(test.Pool, test.Context()));
    }

    [Fact]
    public void P2cKv_TwoWorkers_TheLowerScoreWins()
    {
        var test = new TestPool(2);
        test.Scrape(0, running: 4, waiting: 6, kv: 0.9);
        test.Scrape(1, running: 4, waiting: 0, kv: 0.2);

        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(1, new P2cKvPolicy().Pick(test.Pool, test.Context())));
    }

    [Fact]
    public void P2cKv_BurstBetweenScrapes_SpreadsInsteadOfPilingOntoTheIdleWorker()
    {
        var test = new TestPool(2);
        test.Scrape(0, running: 0, waiting: 0);
        test.Scrape(1, running: 0, waiting: 3);
        var policy = new P2cKvPolicy();

        var picks = new int[2];
        for (var i = 0; i < 10; i++)
        {
            var index = policy.Pick(test.Pool, test.Context());
            picks[index]++;
            test.Workers[index].OnRequestStart();
        }

        // Without the correction w0 would take all ten: its scraped queue stays empty until the next scrape.
        Assert.InRange(picks[0], 6, 7);
        Assert.InRange(picks[1], 3, 4);
    }

    [Fact]
    public void P2cKv_StaleGauges_FallBackToTheGatewaysOwnInFlight()
    {
        var test = new TestPool(2);
        test.Scrape(0, running: 0, waiting: 0);
        test.Scrape(1, running: 30, waiting: 20);
        test.InFlight(0, 6);
        var policy = new P2cKvPolicy();
        Assert.Equal(0, policy.Pick(test.Pool, test.Context())); // fresh: the scrape says w0 is idle

        test.Time.Advance(test.Routing.StaleAfter + TimeSpan.FromMilliseconds(1));

        Assert.False(test.Workers[1].Load(test.Routing.StaleAfter).Fresh);
        Assert.Equal(1, policy.Pick(test.Pool, test.Context())); // stale: w0's 6 in flight against w1's 0
    }

    [Fact]
    public void P2cKv_CachedPrompt_SticksToItsWorker_UntilPrefixTtl()
    {
        var test = new TestPool(4);
        var prompt = TestPool.Prompt(1);
        test.Send(2, prompt);
        var policy = new P2cKvPolicy();

        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(2, policy.Pick(test.Pool, test.Context(prompt))));

        // prefix_ttl bounds how long an entry counts as cached, whatever the capacity says.
        test.Time.Advance(test.Routing.PrefixTtl + TimeSpan.FromSeconds(1));
        var later = Enumerable.Range(0, 40).Select(_ => policy.Pick(test.Pool, test.Context(prompt))).ToArray();
        Assert.True(later.Distinct().Count() > 1, string.Join(",", later));
    }

    // Issue 19: a prefix the fallback once spread over all four workers is cached only where the
    // workers' capacity kept it; it goes there, until that worker's backlog passes what the hit saves.
    [Fact]
    public void P2cKv_SpreadPrefix_GoesWhereItIsResident_AndMovesWhenTheBacklogPassesTheThreshold()
    {
        var test = new TestPool(4);
        var prompt = TestPool.Prompt(1); // 32 chunks, 2,048 tokens
        for (var i = 0; i < 4; i++)
        {
            test.Scrape(i, running: 2, waiting: 0);
            test.Workers[i].Cache.SetCapacity(4 * 2048); // four such prompts
            test.Send(i, prompt);
        }

        // Eight other prompts pass through w0, w1 and w3 and evict it there (twice their capacity;
        // their tables have room for all of it: only the capacity evicts); w2 served only it since.
        for (var other = 100; other < 108; other++)
        {
            foreach (var i in new[] { 0, 1, 3 })
            {
                test.Send(i, TestPool.Prompt(other));
            }
        }

        Assert.Equal([0, 0, 2048, 0], test.Workers.Select(w => w.CachedTokens(prompt, long.MinValue)));
        var policy = new P2cKvPolicy();
        Assert.All(Enumerable.Range(0, 30), _ => Assert.Equal(2, policy.Pick(test.Pool, test.Context(prompt))));

        // Backlog on w2 up to just under the hit (2,048 tokens at equal rates): still worth waiting for.
        var held = test.Workers[2].AddPrefill(1900, 0);
        Assert.All(Enumerable.Range(0, 30), _ => Assert.Equal(2, policy.Pick(test.Pool, test.Context(prompt))));

        // Past it, the cold workers' full prefill is sooner.
        test.Workers[2].AddPrefill(400, 0);
        var moved = Enumerable.Range(0, 30).Select(_ => policy.Pick(test.Pool, test.Context(prompt))).ToArray();
        Assert.DoesNotContain(2, moved);
        Assert.Equal(0, held);
    }

    // Issue 20, cache_salt: one ~2,000-token prompt, sent by two salted tenants and two without a
    // salt, each inspected as the inspection stage does (the tenant's TenantCacheSalt.Seed). Each
    // salted tenant's affinity stays on the worker that has its own blocks; the unsalted tenants
    // share theirs, as before the salt existed.
    [Fact]
    public void P2cKv_SameSaltedPromptOfTwoTenants_StaysWithinEachTenant_UnsaltedTenantsStillShare()
    {
        var body = $$"""{"model":"m","messages":[{"role":"system","content":"{{string.Concat(Enumerable.Range(0, 200).Select(i => $"Rule {i:D3}: be brief. "))}}"}]}""";
        var red = Inspected(body, new AotProxy.Configuration.TenantCacheSalt("red").Seed);
        var blue = Inspected(body, new AotProxy.Configuration.TenantCacheSalt("blue").Seed);
        var plain = Inspected(body, 0);
        Assert.True(plain.Chunks.Length >= 10, $"{plain.Chunks.Length} chunks");
        Assert.DoesNotContain(red.Chunks.ToArray(), blue.Chunks.ToArray().Contains);

        var test = new TestPool(4);
        test.Send(0, red);
        test.Send(1, blue);
        test.Send(2, plain); // acme, no salt
        var policy = new P2cKvPolicy();

        // What each worker holds of each tenant's prompt: only its own tenant's blocks.
        Assert.Equal([red.PromptTokens, 0, 0, 0], test.Workers.Select(w => w.CachedTokens(red, long.MinValue)));
        Assert.Equal([0, blue.PromptTokens, 0, 0], test.Workers.Select(w => w.CachedTokens(blue, long.MinValue)));
        Assert.Equal([0, 0, plain.PromptTokens, 0], test.Workers.Select(w => w.CachedTokens(plain, long.MinValue)));
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(0, policy.Pick(test.Pool, test.Context(red))));
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(1, policy.Pick(test.Pool, test.Context(blue))));
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(2, policy.Pick(test.Pool, test.Context(plain)))); // beta: acme's blocks
    }

    // body as the inspection stage reads it for a tenant of this salt: its routing view.
    private static RouteRequest Inspected(string body, ulong salt)
    {
        var chunks = new ulong[AotProxy.Inspection.PromptChunks.Max];
        Assert.Equal(AotProxy.Inspection.InspectionError.None, AotProxy.Inspection.RequestInspector.Inspect(System.Text.Encoding.UTF8.GetBytes(body), chunks, out var request, out _, salt));
        return new RouteRequest(request.PrefixHash, 0, chunks.AsMemory(0, request.PromptChunks), (long)request.PromptChunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);
    }

    [Fact]
    public void P2cKv_StickyThreshold_FollowsTheMeasuredPrefillRate()
    {
        var test = new TestPool(2);
        var prompt = TestPool.Prompt(1);
        test.Send(0, prompt);
        test.Send(0, prompt); // the second send hits all 2,048 tokens

        var equalRates = P2cKvPolicy.StickyThresholdTokens(test.Workers[0], test.Workers);

        // Measured twice as fast as w1 (at the 20,000 tok/s default): it may carry more backlog.
        test.Workers[0].PrefillTime.Add(1 / 40_000.0, 1);
        var faster = P2cKvPolicy.StickyThresholdTokens(test.Workers[0], test.Workers);

        Assert.Equal(test.Workers[0].MeanHitTokens.Seconds, equalRates, 6);
        Assert.True(equalRates > 0, $"{equalRates}");
        Assert.Equal(equalRates + test.Workers[0].MeanPromptTokens.Seconds, faster, 6); // H + (0 + U) x (2 - 1)
    }

    [Fact]
    public void P2cKv_ErrorRate_CostsAsTheWeightSays()
    {
        var test = new TestPool(2);
        var second = test.Time.GetTimestamp() / test.Time.TimestampFrequency;
        test.Workers[0].Errors.Record(flagged: true, second);
        test.Workers[1].Errors.Record(flagged: false, second);

        Assert.Equal(1, new P2cKvPolicy().Pick(test.Pool, test.Context()));
        Assert.Equal(5.0, Score(test, 0, second) - Score(test, 1, second), 6);
    }

    [Fact]
    public void P2cKv_WinnerWouldQueue_EveryCandidateIsCompared()
    {
        var test = new TestPool(4);
        for (var i = 0; i < 3; i++)
        {
            test.Scrape(i, running: 6, waiting: 3, kv: 0.95);
        }

        test.Scrape(3, running: 6, waiting: 0, kv: 0.95);

        // Two random draws of four miss w3 half the time; a pair without it would queue the request.
        Assert.All(Enumerable.Range(0, 40), _ => Assert.Equal(3, new P2cKvPolicy().Pick(test.Pool, test.Context())));
    }

    [Fact]
    public void P2cKv_NobodyQueues_TwoRandomCandidatesDecide()
    {
        var test = new TestPool(4);
        for (var i = 0; i < 4; i++)
        {
            test.Scrape(i, running: i, waiting: 0);
        }

        var picks = Enumerable.Range(0, 60).Select(_ => new P2cKvPolicy().Pick(test.Pool, test.Context())).ToArray();

        // w3 (the busiest) never wins a pair; w1 and w2 win some, which a global minimum would never give them.
        Assert.DoesNotContain(3, picks);
        Assert.Contains(1, picks);
        Assert.Contains(2, picks);
        Assert.True(picks.Count(p => p == 0) > picks.Count(p => p == 1), string.Join(",", picks));
    }

    [Fact]
    public void P2cKv_RandomCandidates_AreDrawnByWeight()
    {
        // Half-speed workers with half the weight; all idle, so a pair's tie goes to its first draw.
        var test = new TestPool(4, weights: [2, 2, 1, 1]);
        for (var i = 0; i < 4; i++)
        {
            test.Scrape(i, running: 0, waiting: 0);
        }

        var picks = Enumerable.Range(0, 600).Select(_ => new P2cKvPolicy().Pick(test.Pool, test.Context())).ToArray();

        // Weighted: 2/3 to w0 and w1 (a uniform draw gives them 1/2); every worker is still drawn.
        var heavy = picks.Count(p => p <= 1) / (double)picks.Length;
        Assert.InRange(heavy, 0.6, 0.74);
        Assert.All(Enumerable.Range(0, 4), i => Assert.Contains(i, picks));
    }

    [Fact]
    public void ConsistentHash_SameKeySameWorker_AndKeysSpreadEvenly()
    {
        var test = new TestPool(4);
        var policy = new ConsistentHashPolicy(new LeastConnectionsPolicy());

        var owner = policy.Pick(test.Pool, test.Context(key: 12345));
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Equal(owner, policy.Pick(test.Pool, test.Context(key: 12345))));

        var counts = new int[4];
        for (ulong key = 1; key <= 4000; key++)
        {
            counts[policy.Pick(test.Pool, test.Context(key: key))]++;
        }

        Assert.All(counts, c => Assert.InRange(c, 700, 1300)); // 150 virtual nodes: within about 25% of 1000
    }

    [Fact]
    public void ConsistentHash_WorkerLeaves_OnlyItsKeysMove()
    {
        var test = new TestPool(4);
        var policy = new ConsistentHashPolicy(new LeastConnectionsPolicy());
        var before = Enumerable.Range(1, 2000).Select(k => policy.Pick(test.Pool, test.Context(key: (ulong)k))).ToArray();

        test.Workers[3].Draining = true;
        var after = Enumerable.Range(1, 2000).Select(k => policy.Pick(test.Pool, test.Context(key: (ulong)k))).ToArray();

        for (var i = 0; i < before.Length; i++)
        {
            if (before[i] != 3)
            {
                Assert.Equal(before[i], after[i]);
            }
        }

        Assert.DoesNotContain(3, after);
    }

    [Fact]
    public void ConsistentHash_BoundedLoad_SkipsAnOverloadedOwner()
    {
        var test = new TestPool(4);
        var policy = new ConsistentHashPolicy(new LeastConnectionsPolicy());
        var owner = policy.Pick(test.Pool, test.Context(key: 777));
        test.InFlight(owner, 10); // mean (10+1)/4 -> bound ceil(1.25 * 2.75) = 4

        var moved = policy.Pick(test.Pool, test.Context(key: 777));

        Assert.NotEqual(owner, moved);
        Assert.Equal(moved, policy.Pick(test.Pool, test.Context(key: 777))); // the next owner clockwise, stably
    }

    [Fact]
    public void ConsistentHash_NoKey_GoesToTheLeastConnected()
    {
        var test = new TestPool(3);
        test.InFlight(0, 2);
        test.InFlight(2, 1);

        Assert.Equal(1, new ConsistentHashPolicy(new LeastConnectionsPolicy()).Pick(test.Pool, test.Context(key: 0)));
    }

    [Fact]
    public void Adaptive_Greedy_TriesUnmeasuredWorkersThenTheFastest()
    {
        var test = new TestPool(3).With(r => r with { Epsilon = 0 });
        var policy = new AdaptivePolicy();
        test.Workers[0].Ttft.Add(0.2, 1);
        test.Workers[1].Ttft.Add(0.1, 1);

        Assert.Equal(2, policy.Pick(test.Pool, test.Context())); // never measured

        test.Workers[2].Ttft.Add(0.5, 1);
        Assert.Equal(1, policy.Pick(test.Pool, test.Context()));

        test.InFlight(1, 2); // 0.1 s x 3 sharing it > 0.2 s alone
        Assert.Equal(0, policy.Pick(test.Pool, test.Context()));
    }

    [Fact]
    public void Adaptive_Epsilon_ExploresAtThatRate()
    {
        var test = new TestPool(4, seed: 3).With(r => r with { Epsilon = 0.2 });
        for (var i = 0; i < 4; i++)
        {
            test.Workers[i].Ttft.Add(i == 0 ? 0.05 : 0.5, 1);
        }

        var picks = Enumerable.Range(0, 2000).Select(_ => new AdaptivePolicy().Pick(test.Pool, test.Context())).ToArray();

        // 80% greedy + 20% x 1/4 random = 85% to the fastest; each other gets 5%.
        Assert.InRange(picks.Count(p => p == 0), 1600, 1800);
        Assert.All(Enumerable.Range(1, 3), w => Assert.InRange(picks.Count(p => p == w), 50, 160));
    }

    [Fact]
    public void RoutingPolicies_EveryConfiguredNameHasAPolicy()
    {
        foreach (var name in AotProxy.Configuration.RoutingStrategyNames.All)
        {
            var (policy, index) = RoutingPolicies.Get(name);
            Assert.Equal(name, policy.Name);
            Assert.Equal(name, AotProxy.Configuration.RoutingStrategyNames.All[index]);
        }
    }

    private static double Score(TestPool test, int i, long second) =>
        P2cKvPolicy.Score(test.Workers[i], test.Workers[i].Load(test.Routing.StaleAfter), test.Routing, 0, second);
}
