using AotProxy.Configuration;

namespace AotProxy.Routing;

// A worker's admission slots while scheduler.adaptive_slots is on: additive increase,
// multiplicative decrease on its vLLM queue, one step per fresh scrape. A queue on the worker
// means the gateway sends more than vLLM runs at once (max_concurrency is above what its KV
// cache or max_num_seqs holds), so those requests would wait there, unscheduled by tenant or
// priority, instead of in the gateway's queues. One writer (the worker's scrape loop, one pass
// at a time); admission reads Current from any thread.
internal sealed class AdaptiveSlots
{
    // 2 scrapes: one non-empty queue is often a burst that vLLM admits at its next step; two in
    // a row (1 s at the default 500ms interval) is a queue that persists.
    public const int WaitingScrapes = 2;

    // 0.9 per scrape while the queue persists, rounded down, so at least one slot: from 32 slots
    // to 16 in 7 scrapes (3.5 s at 500ms). TCP's 0.5 answers packet loss; a short queue on a worker costs
    // only latency, and halving would throw away half the fleet on one burst.
    public const double Decrease = 0.9;

    // 0.8: above it the running sequences grow into the last KV blocks, and vLLM preempts
    // (recomputes) a sequence rather than queue it; more slots would only add preemptions.
    public const double KvHeadroom = 0.8;

    // What was learned, as slots above (or below) max_concurrency: a reload that changes
    // max_concurrency moves the slots with it, and a worker that never queued follows it exactly.
    private volatile int _offset;
    private int _waitingScrapes;

    // [max(1, floor(min x max_concurrency)), ceil(max x max_concurrency)]. Computed from the
    // current max_concurrency on every read, so a reload that changes it re-clamps at once.
    public static (int Min, int Max) Bounds(int maxConcurrency, SchedulerModel scheduler) => (
        Math.Max(1, (int)Math.Floor(scheduler.AdaptiveMin * maxConcurrency)),
        Math.Max(maxConcurrency, (int)Math.Ceiling(scheduler.AdaptiveMax * maxConcurrency)));

    public int Current(int maxConcurrency, SchedulerModel scheduler)
    {
        var (min, max) = Bounds(maxConcurrency, scheduler);
        return Math.Clamp(maxConcurrency + _offset, min, max);
    }

    // Back to max_concurrency: adaptation is off, or the scrapes went stale and what was
    // learned before may no longer hold (the worker may have restarted).
    public void Reset()
    {
        _waitingScrapes = 0;
        _offset = 0;
    }

    // One step on a fresh scrape. inFlight: what the gateway has outstanding on the worker now.
    public int Adapt(in VllmMetrics metrics, int inFlight, int maxConcurrency, SchedulerModel scheduler)
    {
        var slots = Current(maxConcurrency, scheduler);
        if (!metrics.Has(VllmMetricFields.Waiting))
        {
            // No queue gauge, no evidence either way: hold.
            _waitingScrapes = 0;
            return slots;
        }

        if (metrics.Waiting > 0)
        {
            if (++_waitingScrapes >= WaitingScrapes)
            {
                slots = (int)(slots * Decrease); // floor(0.9 s) <= s - 1 for every s >= 1
            }
        }
        else
        {
            _waitingScrapes = 0;
            var kvKnown = metrics.Has(VllmMetricFields.KvCacheUsage);
            var headroom = kvKnown && metrics.KvCacheUsage < KvHeadroom;
            if (slots < maxConcurrency)
            {
                // Back towards the configured value while nothing waits, idle or not: that value
                // is the operator's, and only a persisting queue argues against it.
                if (headroom || !kvKnown)
                {
                    slots++;
                }
            }
            else if (headroom && inFlight >= slots)
            {
                // Above it only on proof: every slot was in use and the worker still queued
                // nothing and kept KV headroom, so it would have run one more.
                slots++;
            }
        }

        var (min, max) = Bounds(maxConcurrency, scheduler);
        slots = Math.Clamp(slots, min, max);
        _offset = slots - maxConcurrency;
        return slots;
    }
}
