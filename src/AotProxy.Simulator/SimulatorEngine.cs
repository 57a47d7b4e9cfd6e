using System.Diagnostics.CodeAnalysis;

namespace AotProxy.Simulator;

// Continuous batching as vLLM's V1 scheduler does it, in simulated time (README.md has the model).
// One background loop runs engine steps: schedule under the lock, sleep for the step's simulated
// cost, commit under the lock (every scheduled sequence gains its tokens, finished ones leave).
// With nothing to run the loop awaits a signal, so an idle worker costs nothing.
internal sealed class SimulatorEngine : IAsyncDisposable
{
    // Per-step slowdown for each extra decoding sequence. 0.02 gives ~45 tok/s per sequence at a
    // batch of 64 (about 2,800 tok/s in total) for a 100 tok/s single stream: the shape an 8B model
    // shows on one A100, where decode is bound by reading the weights, not by the batch.
    internal const double BatchSlowdown = 0.02;

    // Steps shorter than this run back to back; the sleep comes when the debt adds up to it,
    // because timers cannot wait for less and a 2-core machine must not spin.
    private static readonly TimeSpan MinSleep = TimeSpan.FromMilliseconds(1);

    // After a stall (GC, loaded CI box) the loop catches up at most this much simulated time
    // instantly, rather than bursting out a minute of tokens at once.
    private static readonly TimeSpan MaxLag = TimeSpan.FromMilliseconds(100);

    private static readonly double[] IterationTokenBuckets = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

    private static readonly double[] TimeToFirstTokenBuckets =
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];

    private readonly Lock _gate = new();
    private readonly List<SimulatedSequence> _running = [];
    private readonly LinkedList<SimulatedSequence> _waiting = new();
    private readonly List<(SimulatedSequence Sequence, int Tokens)> _scheduled = [];
    private readonly PrefixCache _prefixCache;
    private readonly LoraSlots _lora;
    private readonly IReadOnlyList<string> _loraModules;
    private readonly double _loraLoadSeconds;
    private readonly SimulatorStats _stats;
    private readonly TimeProvider _time;
    private readonly int _maxNumSeqs;
    private readonly int? _maxNumQueuedReqs;
    private readonly long? _maxNumQueuedTokens;
    private readonly int _numGpuBlocks;
    private readonly int _blockSize;
    private readonly int _maxNumBatchedTokens;
    private readonly double _prefillTokensPerSecond;
    private readonly double _decodeTokensPerSecond;
    private readonly bool _byPriority;
    private readonly SimulatorFaults _faults;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private TaskCompletionSource? _wake;
    private int _usedBlocks;

    public SimulatorEngine(SimulatorOptions options, SimulatorStats stats)
    {
        _stats = stats;
        _time = options.TimeProvider;
        _maxNumSeqs = options.MaxNumSeqs;
        _maxNumQueuedReqs = options.MaxNumQueuedReqs;
        _maxNumQueuedTokens = options.MaxNumQueuedTokens;
        _numGpuBlocks = options.NumGpuBlocks;
        _blockSize = options.BlockSize;
        _maxNumBatchedTokens = options.MaxNumBatchedTokens;
        _prefillTokensPerSecond = options.PrefillTokensPerSecond * options.SpeedFactor;
        _decodeTokensPerSecond = options.DecodeTokensPerSecond * options.SpeedFactor;
        _byPriority = options.SchedulingPolicy == SchedulingPolicy.Priority;
        _faults = options.Faults;
        _prefixCache = new PrefixCache(options.NumGpuBlocks);
        _loraModules = options.LoraModules;
        _lora = new LoraSlots(_loraModules.Count, options.MaxLoras);
        _loraLoadSeconds = options.LoraLoad.TotalSeconds;
        CreatedUnixSeconds = _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        IterationTokens = new PrometheusHistogram(IterationTokenBuckets);
        TimeToFirstToken = new PrometheusHistogram(TimeToFirstTokenBuckets);
        _loop = Task.Run(RunAsync);
    }

    public double CreatedUnixSeconds { get; }

    public PrometheusHistogram IterationTokens { get; }

    public PrometheusHistogram TimeToFirstToken { get; }

    // Simulated cost of one engine step: prefill is linear in the tokens computed, decode is one
    // forward pass whose cost grows slowly with the batch.
    internal static double StepSeconds(int prefillTokens, int decodingSequences, double prefillTokensPerSecond, double decodeTokensPerSecond)
    {
        var seconds = prefillTokens / prefillTokensPerSecond;
        if (decodingSequences > 0)
        {
            seconds += (1 + (BatchSlowdown * (decodingSequences - 1))) / decodeTokensPerSecond;
        }

        return seconds;
    }

    // For an engine without MaxNumQueuedReqs/Tokens, whose queue is never full.
    public SimulatedSequence Submit(ParsedRequest request, int plannedTokens) =>
        TrySubmit(request, plannedTokens, out var sequence) ? sequence : throw new InvalidOperationException("The waiting queue is full.");

    // False when the waiting queue is full: the engine already holds max_num_seqs +
    // MaxNumQueuedReqs requests, running or waiting; or the request would wait and take the
    // waiting prompt tokens past MaxNumQueuedTokens.
    public bool TrySubmit(ParsedRequest request, int plannedTokens, [NotNullWhen(true)] out SimulatedSequence? sequence)
    {
        lock (_gate)
        {
            var inEngine = _running.Count + _waiting.Count;
            if ((_maxNumQueuedReqs is { } maxQueued && inEngine >= _maxNumSeqs + maxQueued)
                || (_maxNumQueuedTokens is { } maxTokens && inEngine >= _maxNumSeqs && WaitingPromptTokens() + request.PromptTokens > maxTokens))
            {
                _stats.AddQueueFull();
                sequence = null;
                return false;
            }

            sequence = new SimulatedSequence(request.PromptTokens, request.BlockHashes, plannedTokens, _time.GetTimestamp(), request.Priority, request.Adapter);
            sequence.WaitingNode = _byPriority ? InsertByPriority(sequence) : _waiting.AddLast(sequence);
            // Not published as waiting yet: the gauges are what the next schedule leaves (PublishState).
            _stats.ObserveInEngine(_running.Count + _waiting.Count);
            _wake?.TrySetResult();
            _wake = null;
        }

        return true;
    }

    // Under _gate; only with MaxNumQueuedTokens, so a walk over the queue is fine.
    private long WaitingPromptTokens()
    {
        long sum = 0;
        foreach (var waiting in _waiting)
        {
            sum += waiting.PromptTokens;
        }

        return sum;
    }

    // vllm:lora_requests_info's labels: the adapters of running and of waiting requests, each
    // list comma-separated in first-seen order, as vLLM joins its dicts' keys.
    public (string Running, string Waiting) LoraAdapters()
    {
        lock (_gate)
        {
            var running = _loraModules.Where((_, i) => _lora.HasRunning(i));
            var waiting = _waiting.Where(s => s.Adapter >= 0).Select(s => _loraModules[s.Adapter]).Distinct();
            return (string.Join(',', running), string.Join(',', waiting));
        }
    }

    // Frees the slot and blocks at once: vLLM aborts a request as soon as its client disconnects.
    public bool Abort(SimulatedSequence sequence)
    {
        lock (_gate)
        {
            switch (sequence.State)
            {
                case SequenceState.Waiting:
                    _waiting.Remove(sequence.WaitingNode!);
                    sequence.WaitingNode = null;
                    break;
                case SequenceState.Running:
                    _running.Remove(sequence);
                    Release(sequence);
                    break;
                default:
                    return false;
            }

            sequence.State = SequenceState.Aborted;
            PublishState();
        }

        sequence.Complete();
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        SimulatedSequence[] leftovers;
        lock (_gate)
        {
            leftovers = [.. _running, .. _waiting];
        }

        foreach (var sequence in leftovers)
        {
            Abort(sequence);
        }

        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        var frequency = _time.TimestampFrequency;
        var minSleepTicks = (long)(MinSleep.TotalSeconds * frequency);
        var maxLagTicks = (long)(MaxLag.TotalSeconds * frequency);
        var deadline = _time.GetTimestamp();
        var stepsWithoutYield = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                Task? idle = null;
                double seconds;
                lock (_gate)
                {
                    seconds = ScheduleStep();
                    if (_scheduled.Count == 0)
                    {
                        _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        idle = _wake.Task;
                    }
                }

                if (idle is not null)
                {
                    await idle.WaitAsync(ct).ConfigureAwait(false);
                    deadline = _time.GetTimestamp();
                    continue;
                }

                var now = _time.GetTimestamp();
                deadline = Math.Max(deadline, now - maxLagTicks) + (long)(seconds * frequency);
                var wait = deadline - now;
                if (wait >= minSleepTicks)
                {
                    stepsWithoutYield = 0;
                    await Task.Delay(TimeSpan.FromSeconds((double)wait / frequency), _time, ct).ConfigureAwait(false);
                }
                else if (++stepsWithoutYield >= 16)
                {
                    stepsWithoutYield = 0;
                    await Task.Yield();
                }

                lock (_gate)
                {
                    CommitStep();
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    // vLLM V1's schedule(): running sequences first (a decode costs one token of the step's
    // budget, a prefill as much of its prompt as fits), taking blocks as they grow and preempting
    // the newest running sequence when blocks run out; then the waiting queue in its order (FIFO,
    // or by priority), unless this step preempted. The head of the queue waits for slots and
    // blocks: nobody overtakes it, except past a request whose LoRA adapter has no slot (LoraSlots),
    // which vLLM skips. Each adapter loaded in the step adds the swap cost to it.
    private double ScheduleStep()
    {
        _scheduled.Clear();
        var budget = _maxNumBatchedTokens;
        var prefillTokens = 0;
        var decoding = 0;
        var preempted = false;

        for (var i = 0; i < _running.Count && budget > 0; i++)
        {
            var sequence = _running[i];
            var tokens = Math.Min(sequence.Context - sequence.Computed, budget);
            if (!TryGrow(sequence, tokens, ref preempted))
            {
                break;
            }

            _scheduled.Add((sequence, tokens));
            budget -= tokens;
            if (sequence.IsDecoding)
            {
                decoding++;
            }
            else
            {
                prefillTokens += tokens;
            }
        }

        var loads = 0;
        var node = _waiting.First;
        while (!preempted && budget > 0 && _running.Count < _maxNumSeqs && node is not null)
        {
            var sequence = node.Value;
            var next = node.Next;
            if (!_lora.CanRun(sequence.Adapter))
            {
                node = next; // every adapter slot is busy: vLLM skips the request and goes on
                continue;
            }

            var cachedBlocks = _prefixCache.Match(sequence.BlockHashes);
            // At least the last prompt token is always computed: its logits give the first new token.
            var cached = Math.Min(cachedBlocks * _blockSize, sequence.Context - 1);
            var tokens = Math.Min(sequence.Context - cached, budget);
            var blocks = BlocksFor(cached + tokens);
            if (blocks > _numGpuBlocks - _usedBlocks)
            {
                break;
            }

            _waiting.Remove(node);
            node = next;
            sequence.WaitingNode = null;
            if (_lora.Start(sequence.Adapter))
            {
                loads++;
                _stats.AddLoraLoad();
            }

            sequence.State = SequenceState.Running;
            sequence.Computed = cached;
            sequence.HeldBlocks = blocks;
            _usedBlocks += blocks;
            if (!sequence.Admitted)
            {
                sequence.Admitted = true;
                sequence.CachedTokens = cached;
                _stats.AddPrefixCacheLookup(sequence.PromptTokens, cached);
                _stats.AddPromptTokens(sequence.PromptTokens);
            }

            _running.Add(sequence);
            _scheduled.Add((sequence, tokens));
            budget -= tokens;
            prefillTokens += tokens;
        }

        PublishState();
        if (_scheduled.Count == 0)
        {
            return 0;
        }

        IterationTokens.Observe(_maxNumBatchedTokens - budget);
        // The runtime speed fault scales the compute (read each step: a GPU slows down mid-batch); an adapter swap is a copy, not compute.
        var speed = _faults.SpeedFactor;
        return StepSeconds(prefillTokens, decoding, _prefillTokensPerSecond * speed, _decodeTokensPerSecond * speed) + (loads * _loraLoadSeconds);
    }

    private bool TryGrow(SimulatedSequence sequence, int tokens, ref bool preempted)
    {
        var needed = BlocksFor(sequence.Computed + tokens) - sequence.HeldBlocks;
        while (needed > _numGpuBlocks - _usedBlocks)
        {
            var victim = _running[^1];
            Preempt(victim);
            preempted = true;
            if (ReferenceEquals(victim, sequence))
            {
                return false;
            }
        }

        if (needed > 0)
        {
            sequence.HeldBlocks += needed;
            _usedBlocks += needed;
        }

        return true;
    }

    private void Preempt(SimulatedSequence victim)
    {
        _running.RemoveAt(_running.Count - 1);
        Release(victim);
        victim.Computed = 0;
        victim.State = SequenceState.Waiting;
        // fcfs: back to the head of the queue. priority: vLLM pushes it onto its heap, where its
        // early arrival puts it ahead of the later waiters of its own priority.
        victim.WaitingNode = _byPriority ? InsertByPriority(victim) : _waiting.AddFirst(victim);
        _stats.AddPreemption();
    }

    // --scheduling-policy priority: vLLM keeps its waiting requests in a heap on (priority,
    // arrival_time); here the list stays sorted the same way, the new one going after every
    // waiter that sorts before it or ties. vLLM also preempts the running request with the largest
    // (priority, arrival_time) when blocks run out, where this engine preempts the newest; the
    // waiting queue's order is what tests of priority admission observe.
    private LinkedListNode<SimulatedSequence> InsertByPriority(SimulatedSequence sequence)
    {
        var before = _waiting.Last;
        while (before is not null && (sequence.Priority, sequence.ArrivedAt).CompareTo((before.Value.Priority, before.Value.ArrivedAt)) < 0)
        {
            before = before.Previous;
        }

        return before is null ? _waiting.AddFirst(sequence) : _waiting.AddAfter(before, sequence);
    }

    private void CommitStep()
    {
        var now = _time.GetTimestamp();
        var generated = 0;
        foreach (var (sequence, tokens) in _scheduled)
        {
            // Aborted (or preempted, which only happens at schedule time) while the step ran.
            if (sequence.State != SequenceState.Running)
            {
                continue;
            }

            sequence.Computed += tokens;
            CacheComputedBlocks(sequence);
            if (sequence.Computed < sequence.Context)
            {
                continue;
            }

            if (sequence.Generated < sequence.PlannedTokens)
            {
                sequence.Generated++;
                sequence.Context++;
                generated++;
                if (sequence.Generated == 1)
                {
                    TimeToFirstToken.Observe(_time.GetElapsedTime(sequence.ArrivedAt, now).TotalSeconds);
                }

                sequence.Publish(sequence.Generated);
            }

            if (sequence.Generated >= sequence.PlannedTokens)
            {
                _running.Remove(sequence);
                Release(sequence);
                sequence.State = SequenceState.Finished;
                sequence.Complete();
            }
        }

        _stats.AddGenerationTokens(generated);
        _scheduled.Clear();
    }

    // vLLM caches a block once it is full and computed; only prompt blocks have keys here. Last
    // block first, as in PrefixCache.Match: a request's unique tail (its user message) is evicted
    // before the system prompt it shares with others. (A prompt prefilled in several chunks leaves
    // its later chunks the more recent; prompts under MaxNumBatchedTokens take one step.)
    private void CacheComputedBlocks(SimulatedSequence sequence)
    {
        var full = Math.Min(sequence.Computed / _blockSize, sequence.BlockHashes.Length);
        for (var i = full - 1; i >= sequence.InsertedBlocks; i--)
        {
            _prefixCache.Insert(sequence.BlockHashes[i]);
        }

        sequence.InsertedBlocks = Math.Max(sequence.InsertedBlocks, full);
    }

    private void Release(SimulatedSequence sequence)
    {
        _lora.Stop(sequence.Adapter);
        _usedBlocks -= sequence.HeldBlocks;
        sequence.HeldBlocks = 0;
    }

    private int BlocksFor(int tokens) => (tokens + _blockSize - 1) / _blockSize;

    // vLLM's running and waiting gauges are the scheduler's stats after a step, so a request that
    // fits is never seen waiting, even for the moment between its arrival and the next schedule.
    // Published here, at the end of each schedule (the loop schedules right after each commit),
    // and after an abort, never at a submit: the gateway's p2c_kv reads one waiting request as a
    // saturated worker, and a scrape that caught a session's own turn on its way in released the
    // conversation to another worker (LoraRoutingTests.Session_TenTurns_StayOnOneWorker, [2,0] on CI).
    private void PublishState() => _stats.SetEngineState(_running.Count, _waiting.Count, _usedBlocks);
}
