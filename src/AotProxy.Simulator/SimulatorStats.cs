namespace AotProxy.Simulator;

// Counters a test reads to prove what the gateway did upstream: that it cancelled (Aborted),
// that the slot came back (Running), that it reused a prefix (PrefixCacheHits).
// Gauges are written by the engine under its lock; everything is read lock-free.
public sealed class SimulatorStats
{
    private long _requestsTotal;
    private long _aborted;
    private long _finishedStop;
    private long _finishedLength;
    private long _resets;
    private long _faultsInjected;
    private long _promptTokens;
    private long _generationTokens;
    private long _prefixCacheQueries;
    private long _prefixCacheHits;
    private long _preemptions;
    private long _rateLimited;
    private long _queueFull;
    private long _loraLoads;
    private volatile int _maxInEngine;
    private volatile int _running;
    private volatile int _waiting;
    private volatile int _usedBlocks;
    private readonly int _numGpuBlocks;

    internal SimulatorStats(int numGpuBlocks) => _numGpuBlocks = numGpuBlocks;

    // Requests that reached a /v1/* endpoint, whatever became of them.
    public long RequestsTotal => Interlocked.Read(ref _requestsTotal);

    public int Running => _running;

    public int Waiting => _waiting;

    // Requests whose client went away before the response was complete.
    public long Aborted => Interlocked.Read(ref _aborted);

    // Requests that ran to a finish reason ("stop" or "length") and were answered.
    public long Completed => FinishedStop + FinishedLength;

    public long FinishedStop => Interlocked.Read(ref _finishedStop);

    public long FinishedLength => Interlocked.Read(ref _finishedLength);

    // Connections the simulator cut on purpose (SimulatorFaults.ResetAfterTokens).
    public long Resets => Interlocked.Read(ref _resets);

    // 500s and hangs served because of SimulatorFaults.
    public long FaultsInjected => Interlocked.Read(ref _faultsInjected);

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long GenerationTokens => Interlocked.Read(ref _generationTokens);

    // Both in tokens, like vLLM's prefix_cache_queries_total / prefix_cache_hits_total.
    public long PrefixCacheQueries => Interlocked.Read(ref _prefixCacheQueries);

    public long PrefixCacheHits => Interlocked.Read(ref _prefixCacheHits);

    public long Preemptions => Interlocked.Read(ref _preemptions);

    // 429s for exceeding --rpm/--tpm: what a gateway that paces correctly never earns.
    public long RateLimited => Interlocked.Read(ref _rateLimited);

    // 503s for a full waiting queue (SimulatorOptions.MaxNumWaiting): what a gateway that keeps
    // within the worker's capacity never earns.
    public long QueueFull => Interlocked.Read(ref _queueFull);

    // LoRA adapters loaded into a slot since start (LoraSlots): each one cost its step the swap.
    public long LoraLoads => Interlocked.Read(ref _loraLoads);

    // The most requests the engine held at once, running and waiting: what the worker was asked
    // to carry at its busiest.
    public int MaxInEngine => _maxInEngine;

    public int UsedBlocks => _usedBlocks;

    // A fraction 0..1, as vLLM's kv_cache_usage_perc (despite the name).
    public double KvCacheUsage => (double)_usedBlocks / _numGpuBlocks;

    internal void AddRequest() => Interlocked.Increment(ref _requestsTotal);

    internal void AddAborted() => Interlocked.Increment(ref _aborted);

    internal void AddFinished(FinishReason reason) =>
        Interlocked.Increment(ref reason == FinishReason.Stop ? ref _finishedStop : ref _finishedLength);

    internal void AddReset() => Interlocked.Increment(ref _resets);

    internal void AddFaultInjected() => Interlocked.Increment(ref _faultsInjected);

    internal void AddPromptTokens(int tokens) => Interlocked.Add(ref _promptTokens, tokens);

    internal void AddGenerationTokens(int tokens) => Interlocked.Add(ref _generationTokens, tokens);

    internal void AddPrefixCacheLookup(int queried, int hit)
    {
        Interlocked.Add(ref _prefixCacheQueries, queried);
        Interlocked.Add(ref _prefixCacheHits, hit);
    }

    internal void AddPreemption() => Interlocked.Increment(ref _preemptions);

    internal void AddRateLimited() => Interlocked.Increment(ref _rateLimited);

    internal void AddQueueFull() => Interlocked.Increment(ref _queueFull);

    internal void AddLoraLoad() => Interlocked.Increment(ref _loraLoads);

    internal void SetEngineState(int running, int waiting, int usedBlocks)
    {
        _running = running;
        _waiting = waiting;
        _usedBlocks = usedBlocks;
        ObserveInEngine(running + waiting);
    }

    // At every submit too, before the gauges show it: a gateway that overshoots its slots shows
    // here even when the extra request left before the next schedule.
    internal void ObserveInEngine(int inEngine)
    {
        if (inEngine > _maxInEngine)
        {
            _maxInEngine = inEngine;
        }
    }
}
