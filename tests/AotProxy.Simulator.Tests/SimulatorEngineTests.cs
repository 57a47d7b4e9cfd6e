namespace AotProxy.Simulator.Tests;

// The engine on a manual clock: a step completes only when the test advances time, so queue
// states and token counts are exact, never raced.
public sealed class SimulatorEngineTests
{
    [Fact]
    public void StepSeconds_LargerBatch_SlowerPerSequenceButFasterInTotal()
    {
        double Rate(int batch) => 1 / SimulatorEngine.StepSeconds(0, batch, 20_000, 100);

        Assert.Equal(100, Rate(1), 9);
        Assert.True(Rate(64) < Rate(8) && Rate(8) < Rate(1));
        Assert.True(64 * Rate(64) > 8 * Rate(8) && 8 * Rate(8) > Rate(1));
        Assert.Equal(0.1, SimulatorEngine.StepSeconds(2000, 0, 20_000, 100), 9);
    }

    [Fact]
    public async Task Submit_FiveWithTwoSlots_TwoRunThreeWaitFifo()
    {
        var (engine, stats, time) = Create(o => o.MaxNumSeqs = 2);
        await using var _ = engine;

        var sequences = Enumerable.Range(0, 5).Select(i => engine.Submit(Prompt(20, (ulong)i), 100)).ToArray();

        // Stepped: the engine may have scheduled before all five were in, and the gauges move only at a schedule.
        Assert.True(await StepUntilAsync(time, () => stats.Running == 2 && stats.Waiting == 3), $"running={stats.Running} waiting={stats.Waiting}");
        Assert.Equal([SequenceState.Running, SequenceState.Running, SequenceState.Waiting, SequenceState.Waiting, SequenceState.Waiting], sequences.Select(s => s.State));
        engine.Abort(sequences[0]);
        Assert.True(await StepUntilAsync(time, () => sequences[2].State == SequenceState.Running));
        Assert.Equal(SequenceState.Waiting, sequences[3].State);
    }

    // One slot, held; two P4 requests wait, then a P0 arrives. fcfs serves by arrival; priority
    // serves the P0 first, then the P4s in their arrival order (vLLM's (priority, arrival_time)).
    [Theory]
    [InlineData(SchedulingPolicy.Fcfs, new[] { "p4-first", "p4-second", "p0-last" })]
    [InlineData(SchedulingPolicy.Priority, new[] { "p0-last", "p4-first", "p4-second" })]
    public async Task Submit_SlotsFull_WaitingQueueFollowsThePolicy(SchedulingPolicy policy, string[] expected)
    {
        var (engine, stats, time) = Create(o => { o.MaxNumSeqs = 1; o.SchedulingPolicy = policy; });
        await using var _ = engine;
        var holder = engine.Submit(Prompt(20, 0), 1000);
        Assert.True(await StepUntilAsync(time, () => holder.State == SequenceState.Running));

        var waiters = new List<(string Name, SimulatedSequence Sequence)>();
        foreach (var (name, priority) in new[] { ("p4-first", 4), ("p4-second", 4), ("p0-last", 0) })
        {
            var request = Prompt(20, (ulong)waiters.Count + 1);
            request.Priority = priority;
            waiters.Add((name, engine.Submit(request, 1000)));
            time.Advance(TimeSpan.FromMilliseconds(1)); // later arrival, as on a real clock
        }

        Assert.True(await StepUntilAsync(time, () => stats.Waiting == 3), $"waiting={stats.Waiting}"); // shown at the next schedule
        var served = new List<string>();
        var running = holder;
        while (served.Count < waiters.Count)
        {
            engine.Abort(running);
            Assert.True(await StepUntilAsync(time, () => waiters.Any(w => w.Sequence.State == SequenceState.Running)));
            var next = waiters.Single(w => w.Sequence.State == SequenceState.Running);
            served.Add(next.Name);
            running = next.Sequence;
        }

        Assert.Equal(expected, served);
    }

    // vLLM's gauges are its scheduler's stats after a step: a request that fits is never seen
    // waiting, neither at an idle engine nor at a busy one with a free slot, where it waits for
    // the step under way (the gateway reads one waiting request as a saturated worker).
    [Fact]
    public async Task Submit_ThatFits_IsNeverPublishedAsWaiting()
    {
        var (engine, stats, time) = Create(o => o.MaxNumSeqs = 2);
        await using var _ = engine;

        var first = engine.Submit(Prompt(20, 1), 1000); // an idle engine
        Assert.Equal(0, stats.Waiting);
        Assert.True(await StepUntilAsync(time, () => stats.Running == 1));
        var second = engine.Submit(Prompt(20, 2), 1000); // a step is under way, and a slot is free
        Assert.Equal(0, stats.Waiting);
        Assert.True(await StepUntilAsync(time, () => stats.Running == 2));

        Assert.Equal(0, stats.Waiting);
        Assert.Equal((SequenceState.Running, SequenceState.Running), (first.State, second.State));
        Assert.Equal(2, stats.MaxInEngine);
    }

    [Fact]
    public async Task Submit_HeadShortOfBlocks_WaitsAndNothingOvertakesIt()
    {
        var (engine, stats, time) = Create(o => o.NumGpuBlocks = 16);
        await using var _ = engine;
        var big = engine.Submit(Prompt(150, 1), 100);
        Assert.True(await StepUntilAsync(time, () => big.State == SequenceState.Running));

        var blocked = engine.Submit(Prompt(150, 2), 10);
        var small = engine.Submit(Prompt(10, 3), 10);
        await time.StepsAsync(3); // three steps the engine ran, not three advances of the clock

        Assert.Equal((SequenceState.Waiting, SequenceState.Waiting), (blocked.State, small.State));
        Assert.Equal((1, 2), (stats.Running, stats.Waiting));
        Assert.InRange(stats.UsedBlocks, 10, 16);
        engine.Abort(big);
        Assert.True(await StepUntilAsync(time, () => blocked.State != SequenceState.Waiting && small.State != SequenceState.Waiting));
    }

    [Theory]
    [InlineData(SchedulingPolicy.Fcfs)]
    [InlineData(SchedulingPolicy.Priority)]
    public async Task Decode_BlocksRunOut_PreemptsNewestAndBothStillFinish(SchedulingPolicy policy)
    {
        var (engine, stats, time) = Create(o => { o.NumGpuBlocks = 16; o.SchedulingPolicy = policy; });
        await using var _ = engine;
        var first = engine.Submit(Prompt(60, 1), 150);
        var second = engine.Submit(Prompt(60, 2), 150);
        var maxUsed = 0;

        var done = await StepUntilAsync(time, () =>
        {
            maxUsed = Math.Max(maxUsed, stats.UsedBlocks);
            return first.State == SequenceState.Finished && second.State == SequenceState.Finished;
        });

        Assert.True(done, $"first={first.State} second={second.State} preemptions={stats.Preemptions}");
        Assert.True(stats.Preemptions >= 1);
        Assert.InRange(maxUsed, 1, 16);
        Assert.Equal((150, 150), (LastProgress(first), LastProgress(second)));
        Assert.Equal(300, stats.GenerationTokens);
        Assert.Equal(0, stats.UsedBlocks);
    }

    [Fact]
    public async Task Submit_SamePromptTwice_SecondHitsPrefixCacheByChainedBlocks()
    {
        var (engine, stats, time) = Create();
        await using var _ = engine;
        var prompt = Prompt(170, 7);

        var first = engine.Submit(prompt, 1);
        Assert.True(await StepUntilAsync(time, () => first.State == SequenceState.Finished));
        var second = engine.Submit(prompt, 1);
        Assert.True(await StepUntilAsync(time, () => second.State == SequenceState.Finished));
        var changedFirstBlock = Prompt(170, 7);
        changedFirstBlock.BlockHashes[0] ^= 1;
        var third = engine.Submit(changedFirstBlock, 1);
        Assert.True(await StepUntilAsync(time, () => third.State == SequenceState.Finished));

        Assert.Equal((0, 160, 0), (first.CachedTokens, second.CachedTokens, third.CachedTokens));
        Assert.Equal(160, stats.PrefixCacheHits);
        Assert.Equal(3 * 170, stats.PrefixCacheQueries);
    }

    [Fact]
    public async Task TrySubmit_MaxNumWaitingReached_RefusesUntilOneLeaves()
    {
        var (engine, stats, time) = Create(o => { o.MaxNumSeqs = 2; o.MaxNumWaiting = 1; });
        await using var _ = engine;

        var admitted = Enumerable.Range(0, 3).Select(i => engine.Submit(Prompt(20, (ulong)i), 1000)).ToArray();
        var refused = engine.TrySubmit(Prompt(20, 3), 1000, out var none);

        Assert.False(refused);
        Assert.Null(none);
        Assert.Equal((1, 3), (stats.QueueFull, stats.MaxInEngine));
        Assert.True(await StepUntilAsync(time, () => stats.Running == 2));
        Assert.False(engine.TrySubmit(Prompt(20, 4), 1000, out var stillNone)); // two running and one waiting: still full
        engine.Abort(admitted[0]);
        Assert.True(engine.TrySubmit(Prompt(20, 5), 1000, out var later));
        Assert.Null(stillNone);
        Assert.Equal(SequenceState.Waiting, later.State);
        Assert.Equal((2, 3), (stats.QueueFull, stats.MaxInEngine));
    }

    [Fact]
    public async Task TrySubmit_MaxNumQueuedTokensReached_RefusesARequestThatWouldWaitPastIt()
    {
        var (engine, stats, time) = Create(o => { o.MaxNumSeqs = 1; o.MaxNumQueuedTokens = 50; });
        await using var _ = engine;

        var running = engine.Submit(Prompt(400, 1), 1000);          // a seat is free: no wait, however long
        Assert.True(await StepUntilAsync(time, () => running.State == SequenceState.Running));
        Assert.True(engine.TrySubmit(Prompt(30, 2), 1000, out var waiting));   // waits with 30 of 50 tokens
        Assert.False(engine.TrySubmit(Prompt(30, 3), 1000, out var refused)); // 60 > 50
        Assert.True(engine.TrySubmit(Prompt(20, 4), 1000, out var fits));   // 50: just fits

        Assert.Null(refused);
        Assert.Equal((SequenceState.Waiting, SequenceState.Waiting), (waiting.State, fits.State));
        Assert.Equal(1, stats.QueueFull);
    }

    [Fact]
    public void MaxNumWaiting_IsTheOldNameOfMaxNumQueuedReqs()
    {
        var options = new SimulatorOptions { MaxNumWaiting = 3 };

        Assert.Equal(3, options.MaxNumQueuedReqs);
    }

    [Fact]
    public async Task Prefill_LongerThanStepBudget_ChunkedOverSteps()
    {
        var (engine, _, time) = Create(o => o.MaxNumBatchedTokens = 8192);
        await using var _ = engine;

        var sequence = engine.Submit(Prompt(20_000, 1), 1);
        Assert.True(await StepUntilAsync(time, () => sequence.State == SequenceState.Finished));

        var (_, steps, tokens) = engine.IterationTokens.Snapshot();
        Assert.Equal((3, 20_000.0), (steps, tokens));
    }

    // The runtime speed fault slows the engine's steps, not a fixed delay: the same request takes
    // five times the simulated time at 0.2, and a flip mid-request slows the steps still to come.
    [Fact]
    public async Task SpeedFactorFault_EveryStepTakesOneOverItLonger_FromTheNextStepOn()
    {
        var full = await SimulatedSecondsAsync(speed: 1.0, flipAfterTokens: 0);
        var slow = await SimulatedSecondsAsync(speed: 0.2, flipAfterTokens: 0);
        Assert.InRange(slow / full, 4.5, 5.5);

        // Slowed after half its tokens: about half way between the two.
        var flipped = await SimulatedSecondsAsync(speed: 0.2, flipAfterTokens: 50);
        Assert.InRange(flipped / full, 2.5, 3.5);
    }

    // Simulated seconds from the submit of a 2,000-token prompt with 100 tokens to generate until
    // it finishes, the speed fault set to `speed` once it has generated `flipAfterTokens`.
    private static async Task<double> SimulatedSecondsAsync(double speed, int flipAfterTokens)
    {
        SimulatorFaults? faults = null;
        var (engine, _, time) = Create(o => faults = o.Faults);
        await using var _ = engine;
        var flipped = flipAfterTokens == 0;
        if (flipped)
        {
            faults!.SpeedFactor = speed; // before the prefill's step
        }

        var started = time.GetTimestamp();
        var sequence = engine.Submit(Prompt(2000, 1), 100);
        Assert.True(await StepUntilAsync(time, () =>
        {
            if (!flipped && LastProgressPeek(sequence) >= flipAfterTokens)
            {
                faults!.SpeedFactor = speed;
                flipped = true;
            }

            return sequence.State == SequenceState.Finished;
        }));
        return time.GetElapsedTime(started).TotalSeconds;
    }

    [Fact]
    public async Task Abort_RunningSequence_CompletesProgressAndFreesBlocks()
    {
        var (engine, stats, time) = Create();
        await using var _ = engine;
        var sequence = engine.Submit(Prompt(100, 1), 1000);
        Assert.True(await StepUntilAsync(time, () => LastProgressPeek(sequence) >= 2));

        Assert.True(engine.Abort(sequence));

        Assert.False(engine.Abort(sequence));
        Assert.Equal(SequenceState.Aborted, sequence.State);
        Assert.InRange(LastProgress(sequence), 2, 999);
        Assert.True(await Eventually.TrueAsync(() => sequence.Progress.Completion.IsCompleted));
        Assert.Equal((0, 0, 0), (stats.Running, stats.Waiting, stats.UsedBlocks));
    }

    internal static (SimulatorEngine Engine, SimulatorStats Stats, TimerClock Time) Create(Action<SimulatorOptions>? configure = null)
    {
        var time = new TimerClock();
        var options = new SimulatorOptions { TimeProvider = time, DecodeTokensPerSecond = 100, PrefillTokensPerSecond = 20_000 };
        configure?.Invoke(options);
        options.Validate();
        var stats = new SimulatorStats(options.NumGpuBlocks);
        return (new SimulatorEngine(options, stats), stats, time);
    }

    internal static ParsedRequest Prompt(int tokens, ulong salt)
    {
        var hashes = new ulong[tokens / 16];
        for (var i = 0; i < hashes.Length; i++)
        {
            hashes[i] = Fnv1a.Hash((ulong)i, Fnv1a.Hash(salt));
        }

        return new ParsedRequest { Kind = RequestKind.Chat, PromptTokens = tokens, BlockHashes = hashes, PromptHash = salt };
    }

    // One engine step at a time, each to its exact simulated end (TimerClock).
    internal static Task<bool> StepUntilAsync(TimerClock time, Func<bool> condition) => time.StepUntilAsync(condition);

    private static int LastProgress(SimulatedSequence sequence)
    {
        var last = -1;
        while (sequence.Progress.TryRead(out var value))
        {
            last = value;
        }

        return last;
    }

    private static int LastProgressPeek(SimulatedSequence sequence) => sequence.Progress.TryPeek(out var value) ? value : 0;
}
