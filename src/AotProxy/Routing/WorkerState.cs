using System.Collections.Immutable;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Hosting.Epoll;
using AotProxy.Inspection;
using AotProxy.Limits;
using AotProxy.Upstream;

namespace AotProxy.Routing;

// The long-lived, mutable side of a worker (Config -> Model -> State). It outlives reloads while
// the worker's name and URL stay the same, so counters, latency averages, health and breaker
// carry over; requests in flight hold it even after a reload removed the worker, and finish on it.
internal sealed class WorkerState
{
    private readonly TimeProvider _time;
    private readonly CapacitySignal? _capacity;
    private readonly long[] _decisions = new long[RoutingStrategyNames.All.Length];
    private volatile WorkerModel _model;
    private volatile string? _authorization;
    private volatile ScrapedLoad? _scraped;
    private volatile UpstreamPacer? _pacer;
    private volatile VllmModelFilter _metricsFilter = VllmModelFilter.All;
    private volatile string _scrapeStatus = "not scraped yet";
    private ImmutableArray<string> _discoveredModels = [];
    private ImmutableArray<ListedModel> _discoveredAdapters = [];
    private ImmutableArray<ListedModel> _listedModels = [];
    private long _adaptersAskedAt;
    private int _inFlight;
    private int _slotsTaken;
    private int _sentSinceScrape;
    private long _requests;
    private long _pushBacks503;
    private long _pushBacks429;
    private long _pushedBackAt; // when it last answered 503/429 "full" (0: never)
    private long _fullUntil;    // and until when its retry-after asked for rest
    private long _prefillBacklog;
    private int _prefilling;
    private int _decoding;
    private long _predictedHits;
    private long _promptTokensInFlight;
    private double _reportedQueries = double.NaN; // the last scrape's counters (the scrape loop alone writes them)
    private double _reportedHits = double.NaN;
    private double _preemptions = double.NaN;
    private volatile bool _draining;
    private volatile bool _warmsUp;
    private volatile bool _warming;
    private volatile bool _removed;
    private volatile SharedWorker? _shared;

    // capacity: told when the slots the worker offers admission change (breaker, drain).
    // upstreamLoops: server.transport = "epoll" (its connections join epoll loops).
    public WorkerState(WorkerModel model, TimeProvider time, CapacitySignal? capacity = null, EpollClientLoops? upstreamLoops = null)
    {
        _time = time;
        _capacity = capacity;
        _model = model;
        _authorization = BearerOf(model);
        Connections = new UpstreamPool(new UpstreamEndpoint(model.Url), time, upstreamLoops);
        Breaker = new CircuitBreaker(time, capacity, opened: Recovered); // its trials, once open_timeout has passed, follow the warm-up
        _pacer = model.Pacing is { } pacing ? new UpstreamPacer(pacing, time) : null;
        Cache = new KvCacheModel(ConfiguredCacheTokens(model));
    }

    // Keep-alive connections to this worker; the URL is part of the state's identity, so the
    // pool lives exactly as long as the state.
    public UpstreamPool Connections { get; }

    public CircuitBreaker Breaker { get; }

    public ActiveHealth Health { get; } = new();

    // Upstream failures (flagged) among the attempts of the last 10 s.
    public OutcomeWindow Errors { get; } = new();

    public LatencyAverage Ttft { get; } = new();

    public LatencyAverage TimePerOutputToken { get; } = new();

    // What its KV cache holds, as far as the gateway can tell (the prompt chunks it sent here).
    public KvCacheModel Cache { get; }

    // Seconds per uncached prompt token, from its streams' first bytes (PrefillLease); 0: not measured.
    public LatencyAverage PrefillTime { get; } = new();

    // Per request sent here: the hit tokens the cache model predicted, and the prompt tokens
    // (sticky_threshold_tokens in /api/routing/stats). Tokens, in LatencyAverage's arithmetic.
    public LatencyAverage MeanHitTokens { get; } = new();

    public LatencyAverage MeanPromptTokens { get; } = new();

    // The adapters believed resident on it, and its session picks (p2c_kv's LoRA and session affinity).
    public WorkerAffinity Affinity { get; } = new();

    // Its slots under scheduler.adaptive_slots, moved by each fresh scrape.
    public AdaptiveSlots AdaptiveSlots { get; } = new();

    public WorkerModel Model => _model;

    // With [cluster]: its slots fleet-wide (SharedWorkerSlots attaches it at the first grant);
    // null for a lone gateway, which then pays one null check per slot taken.
    public SharedWorker? Shared
    {
        get => _shared;
        set => _shared = value;
    }

    // Paces requests to the upstream's own rpm/tpm; null for a worker without them (vLLM), which
    // then pays one null check. Its window and counters carry over reloads that keep the limits.
    public UpstreamPacer? Pacer => _pacer;

    public string Name => _model.Name;

    // "Bearer <api_key>", computed once per config, or null.
    public string? Authorization => _authorization;

    // Configured models win; otherwise what GET /v1/models last answered.
    public ImmutableArray<string> Models => _model.Models.IsEmpty ? DiscoveredModels : _model.Models;

    public ImmutableArray<string> DiscoveredModels
    {
        get => ImmutableInterlocked.InterlockedCompareExchange(ref _discoveredModels, default, default);
        set => ImmutableInterlocked.InterlockedExchange(ref _discoveredModels, value);
    }

    // Every entry of its last GET /v1/models (the gateway's GET /v1/models/{id} shows their
    // max_model_len); empty until it was asked.
    public ImmutableArray<ListedModel> ListedModels
    {
        get => ImmutableInterlocked.InterlockedCompareExchange(ref _listedModels, default, default);
        set => ImmutableInterlocked.InterlockedExchange(ref _listedModels, value);
    }

    // The LoRA adapters among them (listed with a parent), with their parent and root.
    public ImmutableArray<ListedModel> DiscoveredAdapters
    {
        get => ImmutableInterlocked.InterlockedCompareExchange(ref _discoveredAdapters, default, default);
        set => ImmutableInterlocked.InterlockedExchange(ref _discoveredAdapters, value);
    }

    // When ModelDiscovery last asked it, configured with `models`, which of them are LoRA
    // adapters (a TimeProvider timestamp; 0: never).
    public long AdaptersAskedAt
    {
        get => Interlocked.Read(ref _adaptersAskedAt);
        set => Interlocked.Exchange(ref _adaptersAskedAt, value);
    }

    public bool NeedsDiscovery => _model.Models.IsEmpty;

    // Which of the worker's /metrics series count: those of the models it serves here. Rebuilt
    // only when the model list changes (a reload or a discovery), not per scrape.
    public VllmModelFilter MetricsFilter
    {
        get
        {
            var filter = _metricsFilter;
            var models = Models;
            return filter.Models == models ? filter : _metricsFilter = new VllmModelFilter(models);
        }
    }

    public int InFlight => Volatile.Read(ref _inFlight);

    // Its slots held by requests (WorkerSlot): admitted to it, waiting for its pacing turn, or
    // being forwarded. Never above Slots(): a request at the cap goes to another worker or waits
    // in admission, instead of in vLLM's queue, where it would be refused once that is full.
    public int SlotsTaken => Volatile.Read(ref _slotsTaken);

    public long Requests => Interlocked.Read(ref _requests);

    // Prompt tokens to prefill: the predicted uncached part of the streams sent here that have
    // not produced their first byte yet.
    public long PrefillBacklog => Interlocked.Read(ref _prefillBacklog);

    // Those streams, in requests (they sit in the scraped waiting or running counts too).
    public int Prefilling => Volatile.Read(ref _prefilling);

    // Requests past their first byte (and JSON answers, whose first byte comes at their end) that have not ended.
    public int Decoding => Volatile.Read(ref _decoding);

    // 20,000 tok/s until measured: an 8B model on one A100 (the simulator's default). PrefillLease
    // holds each sample to 1k..1M tok/s.
    public double PrefillTokensPerSecond => PrefillTime.Seconds is var perToken and > 0 ? 1 / perToken : DefaultPrefillTokensPerSecond;

    public const double DefaultPrefillTokensPerSecond = 20_000;

    public ScrapedLoad? Scraped => _scraped;

    // "ok", or why the last scrape failed ("timeout", "HTTP 404", ...).
    public string ScrapeStatus => _scrapeStatus;

    public bool Draining
    {
        get => _draining;
        set
        {
            if (_draining != value)
            {
                _draining = value;
                _capacity?.Changed();
            }
        }
    }

    // Warm-up ([routing] warmup), decided here alone: a worker that joins (a new state) or recovers
    // (its health came back, or its breaker opened) waits for one answer to the monitor's warm-up
    // request before it takes traffic, as long as warm-up is on. Warming: it waits; takes no traffic.
    public bool Warming => _warming;

    // Warm-up is on ([routing] warmup, and a WorkerMonitor runs it): set by WorkerRegistry for each
    // snapshot. Turned off, nobody waits any more.
    public bool WarmsUp
    {
        get => _warmsUp;
        set
        {
            _warmsUp = value;
            if (!value)
            {
                SetWarming(false);
            }
        }
    }

    // A new state in the registry's next set, before anyone can route to it.
    public void Joined() => WarmUpFirst();

    // Its health came back (called before it can turn healthy, so no request slips in between),
    // or its breaker opened (called before the breaker signals the change).
    public void Recovered() => WarmUpFirst();

    // Its warm-up answered, or the operator vouched for it (a breaker reset): it takes traffic.
    public void Warmed() => SetWarming(false);

    private void WarmUpFirst()
    {
        if (_warmsUp)
        {
            SetWarming(true);
        }
    }

    private void SetWarming(bool value)
    {
        if (_warming != value)
        {
            _warming = value;
            _capacity?.Changed();
        }
    }

    // 503/429 answers ("full, try another") that were no failure of the worker.
    public long PushBacks => Interlocked.Read(ref _pushBacks503) + Interlocked.Read(ref _pushBacks429);

    public long PushBacksWith(int status) => status == 429 ? Interlocked.Read(ref _pushBacks429) : Interlocked.Read(ref _pushBacks503);

    // Set when a reload dropped the worker: it takes no new requests.
    public bool Removed
    {
        get => _removed;
        set => _removed = value;
    }

    // Takes new requests: not draining, removed or warming, not failing its health checks, circuit not open.
    public bool IsRoutable(CircuitBreakerModel breaker) => TakesRequests && Breaker.AllowsTraffic(breaker);

    // Routable, its breaker aside (RouteContext: a request that holds one of its slots has the
    // breaker's permit already).
    public bool TakesRequests => !_draining && !_removed && !_warming && Health.IsUp;

    public void Update(WorkerModel model)
    {
        _model = model;
        _authorization = BearerOf(model);
        if (_scraped is not { } scraped || !HasCacheConfig(scraped.Metrics))
        {
            Cache.SetCapacity(ConfiguredCacheTokens(model));
        }

        var pacer = _pacer;
        if (model.Pacing is { } pacing)
        {
            if (pacer is null)
            {
                _pacer = new UpstreamPacer(pacing, _time);
            }
            else
            {
                pacer.Update(pacing);
            }
        }
        else if (pacer is not null)
        {
            _pacer = null;
            pacer.ReleaseAll();
        }
    }

    public void OnRequestStart()
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _sentSinceScrape);
    }

    public void OnRequestEnd() => Interlocked.Decrement(ref _inFlight);

    // It answered 503 (vLLM's queue is full) or 429 (a hosted API's limit): it looks full to the
    // strategies until a scrape after this moment says otherwise, and at least for `retryAfter`.
    public void OnPushedBack(int status, TimeSpan retryAfter)
    {
        Interlocked.Increment(ref status == 429 ? ref _pushBacks429 : ref _pushBacks503);
        var now = _time.GetTimestamp();
        Interlocked.Exchange(ref _fullUntil, retryAfter > TimeSpan.Zero ? now + (long)(retryAfter.TotalSeconds * _time.TimestampFrequency) : 0);
        Interlocked.Exchange(ref _pushedBackAt, now);
    }

    // PrefillLease's moves: added when the attempt is sent, moved at its first byte, removed at its end.
    // Returns the backlog the request found.
    internal long AddPrefill(long uncachedTokens, long hitTokens)
    {
        Interlocked.Add(ref _predictedHits, hitTokens);
        Interlocked.Increment(ref _prefilling);
        return Interlocked.Add(ref _prefillBacklog, uncachedTokens) - uncachedTokens;
    }

    internal void RemovePrefill(long uncachedTokens)
    {
        Interlocked.Add(ref _prefillBacklog, -uncachedTokens);
        Interlocked.Decrement(ref _prefilling);
    }

    // Prompt tokens of the attempts in flight here, prefilling or decoding: what the worker's
    // running requests hold in its KV cache (KvCacheModel.OnPreempted).
    public long PromptTokensInFlight => Interlocked.Read(ref _promptTokensInFlight);

    internal void AddPromptInFlight(long tokens) => Interlocked.Add(ref _promptTokensInFlight, tokens);

    internal void AddDecoding() => Interlocked.Increment(ref _decoding);

    internal void RemoveDecoding() => Interlocked.Decrement(ref _decoding);

    // A prompt sent here: recorded in the cache model; returns the tokens of it that should hit.
    internal long RecordPrompt(in RouteRequest request, TimeSpan prefixTtl)
    {
        var now = _time.GetTimestamp();
        var chunks = Cache.Record(request.Chunks.Span, now, Horizon(_time, now, prefixTtl));
        return Math.Min((long)chunks * PromptChunks.TokensPerChunk, request.PromptTokens);
    }

    // The tokens of this prompt the model believes cached here.
    public long CachedTokens(in RouteRequest request, long horizon) =>
        Math.Min((long)Cache.CachedChunks(request.Chunks.Span, horizon) * PromptChunks.TokensPerChunk, request.PromptTokens);

    // The oldest timestamp an entry may have and still count as cached: prefix_ttl ago.
    public static long Horizon(TimeProvider time, long now, TimeSpan prefixTtl) => now - (long)(prefixTtl.TotalSeconds * time.TimestampFrequency);

    // Admission slots on this worker: max_concurrency, or with scheduler.adaptive_slots what its
    // queue has taught, as long as the scrapes that taught it are fresh.
    public int Slots(SchedulerModel scheduler, TimeSpan staleAfter) =>
        scheduler.AdaptiveSlots && IsFresh(staleAfter) ? AdaptiveSlots.Current(_model.MaxConcurrency, scheduler) : _model.MaxConcurrency;

    // The slots it offers admission now: none while it takes no requests; while its breaker is
    // not closed, at most half_open_max_requests, as only that many trials go through.
    public int Capacity(GatewaySnapshot snapshot)
    {
        var breaker = snapshot.CircuitBreaker;
        if (!IsRoutable(breaker))
        {
            return 0;
        }

        var slots = Slots(snapshot.Scheduler, snapshot.Routing.StaleAfter);
        return Breaker.State == BreakerState.Closed ? slots : Math.Min(slots, breaker.HalfOpenMaxRequests);
    }

    // Whether one of its slots is free (its routability aside).
    public bool HasRoom(SchedulerModel scheduler, TimeSpan staleAfter) => SlotsTaken < Room(Slots(scheduler, staleAfter));

    // Its slots, and with [cluster] no more than this replica may hold of them fleet-wide as last
    // read (its grants and the worker's free slots): a request beyond it would only wait at the
    // store, so it waits in admission instead, in its place.
    private int Room(int slots) => _shared is { } shared ? Math.Min(slots, shared.Room) : slots;

    // One of its slots and its breaker's permit, or neither: a compare-and-swap below its slots,
    // so concurrent takers never overshoot them. The caller checked that it is routable.
    // beyondFleet: its own slots, not capped by the room this replica last read fleet-wide (a
    // waiter that may preempt on another replica waits for the store's slot in place).
    public bool TryTakeSlot(GatewaySnapshot snapshot, out WorkerSlot slot, bool beyondFleet = false)
    {
        slot = default;
        var own = Slots(snapshot.Scheduler, snapshot.Routing.StaleAfter);
        var slots = beyondFleet ? own : Room(own);
        var taken = Volatile.Read(ref _slotsTaken);
        while (true)
        {
            if (taken >= slots)
            {
                return false;
            }

            var found = Interlocked.CompareExchange(ref _slotsTaken, taken + 1, taken);
            if (found == taken)
            {
                break;
            }

            taken = found;
        }

        return TryPermit(snapshot, out slot);
    }

    // A slot for a request that holds the worker's grant fleet-wide already (a want on the pool
    // granted here, Router.TryMove): the store capped it, so it may go past this replica's own
    // count, which a waiter for the store's slot holds in place (beyondFleet). False when its
    // breaker takes nothing now.
    public bool TryTakeGrantedSlot(GatewaySnapshot snapshot, out WorkerSlot slot)
    {
        Interlocked.Increment(ref _slotsTaken);
        return TryPermit(snapshot, out slot);
    }

    // The breaker's permit for a slot just counted, or the slot back.
    private bool TryPermit(GatewaySnapshot snapshot, out WorkerSlot slot)
    {
        var permit = Breaker.TryAcquire(snapshot.CircuitBreaker);
        if (permit == BreakerPermit.Denied)
        {
            ReleaseSlot();
            slot = default;
            return false;
        }

        slot = new WorkerSlot(this, permit);
        return true;
    }

    // Through WorkerSlot.Release only.
    internal void ReleaseSlot() => Interlocked.Decrement(ref _slotsTaken);

    public void OnScraped(VllmMetrics metrics) => OnScraped(metrics, scheduler: null, TimeSpan.Zero);

    // With a scheduler whose adaptive_slots is on, the scrape also moves the worker's slots one
    // step; after a gap longer than staleAfter they start again from max_concurrency. The cache
    // model takes the worker's capacity and corrects itself with its hit and preemption counters.
    public void OnScraped(VllmMetrics metrics, SchedulerModel? scheduler, TimeSpan staleAfter, double learningRate = 0.2)
    {
        var continues = IsFresh(staleAfter);
        Interlocked.Exchange(ref _sentSinceScrape, 0);
        OnCacheScraped(metrics, learningRate);
        _scraped = new ScrapedLoad(metrics, _time.GetTimestamp());
        _scrapeStatus = "ok";
        if (scheduler is not { AdaptiveSlots: true } || !continues)
        {
            AdaptiveSlots.Reset();
        }

        if (scheduler is { AdaptiveSlots: true })
        {
            AdaptiveSlots.Adapt(metrics, InFlight, _model.MaxConcurrency, scheduler);
        }
    }

    private void OnCacheScraped(in VllmMetrics metrics, double learningRate)
    {
        Cache.SetCapacity(HasCacheConfig(metrics) ? metrics.NumGpuBlocks * metrics.BlockSize : ConfiguredCacheTokens(_model));
        var predicted = Interlocked.Exchange(ref _predictedHits, 0);
        var queries = metrics.Has(VllmMetricFields.PrefixCacheQueries) ? metrics.PrefixCacheQueries : double.NaN;
        var hits = metrics.Has(VllmMetricFields.PrefixCacheHits) ? metrics.PrefixCacheHits : double.NaN;
        var preemptions = metrics.Has(VllmMetricFields.Preemptions) ? metrics.Preemptions : double.NaN;
        if (preemptions > _preemptions)
        {
            Cache.OnPreempted(PromptTokensInFlight);
        }

        // A counter that went back is a worker that restarted (vLLM starts them at 0), and a new
        // process has an empty cache: certain, unlike a drop in kv_cache_usage_perc, which falls
        // whenever requests finish, as vLLM counts the freed blocks its prefix cache still holds as
        // free. Seen only when a scrape in between caught the counters below their old values.
        // A worker without hit counters keeps its correction.
        if (queries < _reportedQueries || hits < _reportedHits || preemptions < _preemptions)
        {
            Cache.Forget();
        }
        else if (hits >= _reportedHits)
        {
            Cache.Correct(hits - _reportedHits, predicted, learningRate);
        }

        _reportedQueries = queries;
        _reportedHits = hits;
        _preemptions = preemptions;
    }

    private static bool HasCacheConfig(in VllmMetrics metrics) =>
        metrics.Has(VllmMetricFields.NumGpuBlocks | VllmMetricFields.BlockSize) && metrics.NumGpuBlocks > 0 && metrics.BlockSize > 0;

    private static long ConfiguredCacheTokens(WorkerModel model) => model.KvCacheTokens > 0 ? model.KvCacheTokens : KvCacheModel.DefaultCapacityTokens;

    // The gauges stay as they were and age into staleness (WorkerLoad falls back then).
    public void OnScrapeFailed(string reason) => _scrapeStatus = reason;

    public bool IsFresh(TimeSpan staleAfter) => FreshScrape(staleAfter) is not null;

    public WorkerLoad Load(TimeSpan staleAfter)
    {
        var inFlight = InFlight;
        if (FreshScrape(staleAfter) is { } scraped)
        {
            var metrics = scraped.Metrics;
            // Sent since the scrape and still in flight: a request that already finished is in
            // neither the scrape nor the worker's queue (min: the counter never goes down by itself).
            var waiting = metrics.Waiting + Math.Min(Volatile.Read(ref _sentSinceScrape), inFlight);
            return new WorkerLoad(
                LooksFull(scraped.At, staleAfter) ? Math.Max(waiting, _model.MaxConcurrency) : waiting,
                metrics.Running,
                metrics.Has(VllmMetricFields.KvCacheUsage) ? metrics.KvCacheUsage : Occupancy(inFlight),
                Fresh: true);
        }

        // The gateway's own view: what it sent beyond max_concurrency is presumably queued.
        var capacity = _model.MaxConcurrency;
        var queued = Math.Max(0, inFlight - capacity);
        return new WorkerLoad(LooksFull(0, staleAfter) ? Math.Max(queued, capacity) : queued, Math.Min(inFlight, capacity), Occupancy(inFlight), Fresh: false);
    }

    // Pushed back since the scrape taken at `scrapedAt` (for at most staleAfter, as a scrape that
    // never comes must not keep it full), or within its retry-after. One read when it never was.
    private bool LooksFull(long scrapedAt, TimeSpan staleAfter)
    {
        var at = Volatile.Read(ref _pushedBackAt);
        if (at == 0)
        {
            return false;
        }

        var now = _time.GetTimestamp();
        return (at >= scrapedAt && _time.GetElapsedTime(at, now) <= staleAfter) || now < Interlocked.Read(ref _fullUntil);
    }

    // The last good scrape, unless it is older than staleAfter.
    private ScrapedLoad? FreshScrape(TimeSpan staleAfter) =>
        _scraped is { } scraped && _time.GetElapsedTime(scraped.At) <= staleAfter ? scraped : null;

    // by: -1 when a request's pick moved to another worker (Router.TryMove): one decision per pick.
    public void CountDecision(int strategy, int by = 1) => Interlocked.Add(ref _decisions[strategy], by);

    public long Decisions(int strategy) => Interlocked.Read(ref _decisions[strategy]);

    private double Occupancy(int inFlight) => Math.Min(1.0, (double)inFlight / Math.Max(1, _model.MaxConcurrency));

    private static string? BearerOf(WorkerModel model) =>
        model.ApiKey.Length == 0 ? null : "Bearer " + model.ApiKey;
}
