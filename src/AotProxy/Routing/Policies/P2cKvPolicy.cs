using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// The default: power of two choices over each worker's estimated time to this request's first
// token, which knows what each worker has cached (KvCacheModel) and how much prompt it still has
// to prefill (issue 19):
//   estimate = (prefill_backlog + uncached) / prefill_rate + score x decode_step
//   score    = w_waiting·waiting_beyond_backlog + w_running·running + w_kv·kv_usage
//            + w_latency·latency_norm + w_error·error_rate
// uncached: the request's prompt tokens minus those the worker's cache model holds; the backlog:
// the uncached tokens of the streams sent there that have not started; the rate: measured from
// their first bytes. The score terms keep their weights and stand for what tokens cannot see
// (other clients' queue, the batch, KV pressure, slowness, errors), one unit being one of the
// worker's decode steps (its time per output token). The gateway's own requests still in prefill
// are in the backlog, so they leave the waiting count.
// Two candidates: the warmest worker (most cached tokens of this prompt, ties to the lighter load)
// and a random one (Draw: in proportion to the worker's weight); the lower estimate wins. So the
// warm worker keeps the prompt until the extra prefill it would wait behind costs more than its
// hit saves, a threshold that follows each worker's measured rate (sticky_threshold_tokens in
// /api/routing/stats). Without a warm worker both are random, which spreads a burst better than
// always taking the global minimum on gauges that are up to one scrape old; WorkerLoad adds the
// requests sent since the scrape for the same reason. A warm worker that carries affinity_max_gap
// more requests than the least loaded AND affinity_max_ratio times as many is not nominated (no
// hot spot from affinity).
// When the winner would queue the request (a waiting count of one or more), every candidate is
// compared instead: in a small pool two random draws miss the one worker with room often (half
// the time among 4), and a request queued in vLLM costs more TTFT than anything else here.
// (perf/routing.sh, unique prompts: TTFT p90 1.26-1.54x least_queue's without the fallback, ~1.0x with it.)
internal sealed class P2cKvPolicy : IRoutingPolicy
{
    // A decode step until the worker's time per output token is measured: 20 ms, an 8B model's
    // step with a few dozen sequences batched.
    private const double DefaultStepSeconds = 0.02;

    public string Name => RoutingStrategyNames.P2cKv;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        // A conversation's worker, then an adapter's placement, decide first (their own types).
        if (SessionAffinity.Pick(pool, context) is var sticky and >= 0)
        {
            return sticky;
        }

        if (pool.Adapter is not null)
        {
            return LoraPlacement.Pick(pool, context);
        }

        var workers = pool.Workers;
        var candidates = workers.Length <= WorkerPool.StackCandidates ? stackalloc int[workers.Length] : new int[workers.Length];
        var count = context.Candidates(workers, candidates);
        if (count <= 1)
        {
            return count == 0 ? -1 : candidates[0];
        }

        candidates = candidates[..count];
        var estimates = count <= WorkerPool.StackCandidates ? stackalloc double[count] : new double[count];
        var waiting = count <= WorkerPool.StackCandidates ? stackalloc double[count] : new double[count];
        var warm = EstimateAll(workers, candidates, context, estimates, waiting);

        var random = context.Random;
        var first = warm >= 0 ? warm : Draw(workers, candidates, random, except: -1);
        var second = Draw(workers, candidates, random, except: first);
        var winner = estimates[second] < estimates[first] ? second : first;
        return candidates[waiting[winner] >= 1 ? Lowest(estimates) : winner];
    }

    internal static double Score(WorkerState worker, WorkerLoad load, RoutingModel routing, double meanTtft, long second)
    {
        var weights = routing.Weights;
        var ttft = worker.Ttft.Seconds;
        var latencyNorm = meanTtft > 0 && ttft > 0 ? ttft / meanTtft : 1.0;
        return (weights.Waiting * load.Waiting)
            + (weights.Running * load.Running)
            + (weights.Kv * load.KvUsage)
            + (weights.Latency * latencyNorm)
            + (weights.Error * worker.Errors.Rate(second));
    }

    // Seconds to this request's first token on `worker`, of which `cachedTokens` hit.
    internal static double Estimate(WorkerState worker, WorkerLoad load, long promptTokens, long cachedTokens, RoutingModel routing, double meanTtft, long second)
    {
        var prefill = (worker.PrefillBacklog + promptTokens - cachedTokens) / worker.PrefillTokensPerSecond;
        var others = load with { Waiting = Math.Max(0, load.Waiting - worker.Prefilling) };
        var step = worker.TimePerOutputToken.Seconds is var measured and > 0 ? measured : DefaultStepSeconds;
        return prefill + (Score(worker, others, routing, meanTtft, second) * step);
    }

    // How much more backlog than the least backlogged other worker `worker` may carry before a hit of its
    // mean predicted size no longer pays, each at its measured rate (the prefill terms of Estimate):
    //   (B + U - H) / r  <=  (B_min + U) / r_min   ->   B - B_min  <=  H + (B_min + U) x (r / r_min - 1)
    // with U the mean prompt and H the mean hit of the requests sent to it.
    internal static double StickyThresholdTokens(WorkerState worker, ReadOnlySpan<WorkerState> fleet)
    {
        WorkerState? least = null;
        foreach (var other in fleet)
        {
            if (other != worker && (least is null || other.PrefillBacklog < least.PrefillBacklog))
            {
                least = other;
            }
        }

        var prompt = worker.MeanPromptTokens.Seconds;
        var hit = worker.MeanHitTokens.Seconds;
        if (least is null)
        {
            return hit;
        }

        return Math.Max(0, hit + ((least.PrefillBacklog + prompt) * ((worker.PrefillTokensPerSecond / least.PrefillTokensPerSecond) - 1)));
    }

    // Every candidate's estimate and waiting count, from one Load each; returns the warm
    // candidate's position, or -1 (no prompt chunks, nothing cached anywhere, or a hot spot).
    private static int EstimateAll(WorkerState[] workers, ReadOnlySpan<int> candidates, in RouteContext context, Span<double> estimates, Span<double> waiting)
    {
        var routing = context.Routing;
        var request = context.Request;
        var time = context.Time;
        var meanTtft = MeanTtft(workers, candidates);
        var now = time.GetTimestamp();
        var second = now / time.TimestampFrequency;
        var horizon = WorkerState.Horizon(time, now, routing.PrefixTtl);
        var lookUp = !request.Chunks.IsEmpty;
        var warm = -1;
        long warmTokens = 0;
        var warmLoad = double.MaxValue;
        var leastLoad = double.MaxValue;
        for (var i = 0; i < candidates.Length; i++)
        {
            var worker = workers[candidates[i]];
            var load = worker.Load(routing.StaleAfter);
            var cached = lookUp ? worker.CachedTokens(request, horizon) : 0;
            estimates[i] = Estimate(worker, load, request.PromptTokens, cached, routing, meanTtft, second);
            waiting[i] = load.Waiting;
            leastLoad = Math.Min(leastLoad, load.Requests);
            if (cached > warmTokens || (cached > 0 && cached == warmTokens && load.Requests < warmLoad))
            {
                warm = i;
                warmTokens = cached;
                warmLoad = load.Requests;
            }
        }

        var hotSpot = warmLoad - leastLoad > routing.AffinityMaxGap && warmLoad > routing.AffinityMaxRatio * leastLoad;
        return hotSpot ? -1 : warm;
    }

    // A random candidate other than `except`, drawn in proportion to its configured weight: a fleet
    // whose half-speed workers have half the weight offers them half as often, so a prompt cached
    // nowhere lands on a slow worker's prefill less often than a uniform draw would put it there.
    private static int Draw(WorkerState[] workers, ReadOnlySpan<int> candidates, Random random, int except)
    {
        var total = 0;
        for (var i = 0; i < candidates.Length; i++)
        {
            total += i == except ? 0 : Math.Max(1, workers[candidates[i]].Model.Weight);
        }

        var ticket = random.Next(total);
        for (var i = 0; i < candidates.Length; i++)
        {
            if (i != except && (ticket -= Math.Max(1, workers[candidates[i]].Model.Weight)) < 0)
            {
                return i;
            }
        }

        return except == 0 ? 1 : 0; // not reached: the tickets add up to total
    }

    // Ties go to the first: candidates are in pool order, so a tie in a full comparison is rare
    // (the scores include the since-scrape correction) and harmless.
    private static int Lowest(ReadOnlySpan<double> scores)
    {
        var best = 0;
        for (var i = 1; i < scores.Length; i++)
        {
            if (scores[i] < scores[best])
            {
                best = i;
            }
        }

        return best;
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
