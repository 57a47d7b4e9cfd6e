using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// The default: power of two choices over live vLLM load, with prompt-prefix affinity.
//   score = w_waiting·waiting + w_running·running + w_kv·kv_usage + w_latency·latency_norm
//         + w_error·error_rate − prefix_bonus (for the worker that has the prefix cached)
// Two candidates, the lower score wins. Without affinity both are random, which spreads a
// burst better than always taking the global minimum on gauges that are up to one scrape old;
// WorkerLoad adds the requests sent since the scrape for the same reason.
// With affinity, one candidate is the least-loaded worker that served the prefix within
// prefix_ttl, the other is random. Affinity never makes a hot spot: when that worker carries
// affinity_max_gap more requests than the least-loaded candidate AND affinity_max_ratio times as
// many, the prefix is treated as uncached (the bug SGLang's and vLLM's routers had).
internal sealed class P2cKvPolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.P2cKv;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        var workers = pool.Workers;
        Span<int> candidates = workers.Length <= WorkerPool.StackCandidates ? stackalloc int[workers.Length] : new int[workers.Length];
        var count = context.Candidates(workers, candidates);
        if (count <= 1)
        {
            return count == 0 ? -1 : candidates[0];
        }

        var routing = context.Routing;
        var affine = routing.PrefixBonus > 0 ? Affine(workers, candidates[..count], context) : -1;
        int first, second;
        if (affine >= 0)
        {
            first = affine;
            second = candidates[context.Random.Next(count - 1)];
            second = second == affine ? candidates[count - 1] : second;
        }
        else
        {
            var a = context.Random.Next(count);
            var b = context.Random.Next(count - 1);
            first = candidates[a];
            second = candidates[b >= a ? b + 1 : b];
        }

        var meanTtft = MeanTtft(workers, candidates[..count]);
        var now = context.Time.GetTimestamp() / context.Time.TimestampFrequency;
        var firstScore = Score(workers[first], routing, meanTtft, now) - (first == affine ? routing.PrefixBonus : 0);
        var secondScore = Score(workers[second], routing, meanTtft, now);
        return secondScore < firstScore ? second : first;
    }

    internal static double Score(WorkerState worker, RoutingModel routing, double meanTtft, long second)
    {
        var load = worker.Load(routing.StaleAfter);
        var weights = routing.Weights;
        var ttft = worker.Ttft.Seconds;
        var latencyNorm = meanTtft > 0 && ttft > 0 ? ttft / meanTtft : 1.0;
        return (weights.Waiting * load.Waiting)
            + (weights.Running * load.Running)
            + (weights.Kv * load.KvUsage)
            + (weights.Latency * latencyNorm)
            + (weights.Error * worker.Errors.Rate(second));
    }

    // The least-loaded candidate that served this prefix recently, unless that would make it a hot spot.
    private static int Affine(WorkerState[] workers, ReadOnlySpan<int> candidates, in RouteContext context)
    {
        var hash = context.Request.PrefixHash;
        if (hash == 0)
        {
            return -1;
        }

        var routing = context.Routing;
        var horizon = context.Time.GetTimestamp() - (long)(routing.PrefixTtl.TotalSeconds * context.Time.TimestampFrequency);
        var affine = -1;
        var affineLoad = double.MaxValue;
        var leastLoad = double.MaxValue;
        foreach (var index in candidates)
        {
            var worker = workers[index];
            var load = worker.Load(routing.StaleAfter).Requests;
            leastLoad = Math.Min(leastLoad, load);
            if (load < affineLoad && worker.Prefixes.LastServed(hash) >= horizon)
            {
                affine = index;
                affineLoad = load;
            }
        }

        var hotSpot = affineLoad - leastLoad > routing.AffinityMaxGap && affineLoad > routing.AffinityMaxRatio * leastLoad;
        return affine >= 0 && !hotSpot ? affine : -1;
    }

    private static double MeanTtft(WorkerState[] workers, ReadOnlySpan<int> candidates)
    {
        double sum = 0;
        var samples = 0;
        foreach (var index in candidates)
        {
            var ttft = workers[index].Ttft.Seconds;
            if (ttft > 0)
            {
                sum += ttft;
                samples++;
            }
        }

        return samples == 0 ? 0 : sum / samples;
    }
}
