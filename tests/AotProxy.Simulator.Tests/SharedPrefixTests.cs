using System.Net;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

// perf/routing.sh's shared-prefix workload, as the simulator sees it: one long system message
// from a small set, then a user message of its own. The system message renders first
// ("system\n" + text + "\n"), so its full blocks are the same in every request that carries it.
public sealed class SharedPrefixTests
{
    // "system\n" (7 bytes) + 8000 + "\n" = 8008 bytes: 125 full 64-byte blocks (16 tokens of 4
    // bytes each), the 126th already holds the start of the user message.
    private const int SystemChars = 8000;
    private const int SharedTokens = 125 * 16;

    [Fact]
    public async Task Chat_SameSystemMessageDifferentUsers_HitsTheSystemBlocksOnly()
    {
        await using var worker = await TestWorker.StartAsync();

        await SendAsync(worker, System('A'), "first user asks about invoices");
        Assert.Equal(0, worker.Stats.PrefixCacheHits);

        await SendAsync(worker, System('A'), "second user asks about refunds");
        Assert.Equal(SharedTokens, worker.Stats.PrefixCacheHits);

        await SendAsync(worker, System('B'), "second user asks about refunds");
        Assert.Equal(SharedTokens, worker.Stats.PrefixCacheHits);

        await SendAsync(worker, System('A'), "third user asks about taxes");
        Assert.Equal(2 * SharedTokens, worker.Stats.PrefixCacheHits);
    }

    [Fact]
    public async Task Chat_MoreSystemMessagesThanTheCacheHolds_LeastRecentLosesItsTailFirst()
    {
        // 300 blocks: two 8,000-character system messages (125 blocks each) fit, three do not.
        await using var worker = await TestWorker.StartAsync(o => o.NumGpuBlocks = 300);

        foreach (var prefix in "ABC")
        {
            await SendAsync(worker, System(prefix), $"user of {prefix}");
        }

        await SendAsync(worker, System('C'), "another user of C");
        Assert.Equal(SharedTokens, worker.Stats.PrefixCacheHits);

        // C took 75 of A's blocks, from A's end, as vLLM evicts: A's first 50 blocks still hit.
        await SendAsync(worker, System('A'), "another user of A");
        Assert.Equal(SharedTokens + (50 * 16), worker.Stats.PrefixCacheHits);
    }

    [Fact]
    public void Match_TouchesTheFirstBlockLast_SoTheTailIsEvictedFirst()
    {
        var cache = new PrefixCache(3);
        foreach (var block in new ulong[] { 1, 2, 3 })
        {
            cache.Insert(block);
        }

        Assert.Equal(3, cache.Match([1, 2, 3]));
        cache.Insert(99);

        Assert.Equal(2, cache.Match([1, 2, 3]));
    }

    // Differs from the other prefixes in its very first character, as aotproxy-load's are.
    private static string System(char first) => first + new string('x', SystemChars - 1);

    private static async Task SendAsync(TestWorker worker, string system, string user)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = "meta-llama/Llama-3.1-8B-Instruct",
            ["messages"] = new[]
            {
                new Dictionary<string, string> { ["role"] = "system", ["content"] = system },
                new Dictionary<string, string> { ["role"] = "user", ["content"] = user },
            },
            ["max_tokens"] = 2,
        });
        var (response, text) = await worker.SendAsync(TestWorker.ChatPath, body);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        response.Dispose();
    }
}
