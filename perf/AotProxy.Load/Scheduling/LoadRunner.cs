using System.Diagnostics;
using AotProxy.Load.Http;
using AotProxy.Load.Profiles;
using AotProxy.Load.Recording;

namespace AotProxy.Load.Scheduling;

// Runs a profile. One dedicated thread walks the schedule and hands each request to the thread
// pool at its intended time; it never waits for a response, so a slow target cannot slow the
// offered load (no coordinated omission). Every latency is measured from the intended send time,
// and when the runner itself falls behind, that shows as late sends and schedule lag.
internal sealed class LoadRunner
{
    // The schedule starts this far after setup, so that its first sends are not late because of
    // the thread start.
    private static readonly long LeadTicks = Stopwatch.Frequency / 50;

    // Above this much time left, the scheduling thread sleeps; below, it yields, and in the last
    // 50 µs it spins: Thread.Sleep(1) oversleeps by up to a millisecond on Linux.
    private static readonly long SleepAboveTicks = Stopwatch.Frequency / 500;
    private static readonly long SpinBelowTicks = Stopwatch.Frequency / 20_000;

    // A dead target must not hold the run up for long before it is reported as errors.
    private static readonly TimeSpan WarmUpLimit = TimeSpan.FromSeconds(5);

    private readonly LoadProfile _profile;
    private readonly RunOptions _options;
    private readonly LoadPlan _plan;
    private readonly ScenarioRecorder[] _recorders;
    private readonly RequestTemplate[] _templates;
    private readonly MixPicker _picker;
    private readonly List<Task> _closedLoops = [];
    private RequestSender? _sender;
    private CancellationToken _stop;
    private long _start;
    private long _inFlight;
    private long _lastCompletion;

    public LoadRunner(LoadProfile profile, RunOptions options)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(options);
        _profile = profile;
        _options = options;
        _plan = LoadPlan.Create(profile.Steps, options.DurationScale, options.RateScale);
        _recorders = [.. profile.Mix.Select(_ => new ScenarioRecorder())];
        _templates = [.. profile.Mix.Select(m => RequestTemplate.Create(profile, m, options.Key))];
        _picker = new MixPicker(profile.Mix, options.DurationScale);
        Target = RequestUri(options.Target ?? profile.Target, profile.Path);
    }

    public Uri Target { get; }

    public LoadPlan Plan => _plan;

    public static Uri RequestUri(Uri target, string path)
    {
        ArgumentNullException.ThrowIfNull(target);
        return new Uri(target.AbsoluteUri.TrimEnd('/') + path);
    }

    public async Task<RunResult> RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var maxConcurrency = _plan.Steps.Select(s => s.Step.Concurrency).DefaultIfEmpty(0).Max();
        using var sender = new RequestSender(Target, _profile.Timeout, _profile.MaxInFlight + maxConcurrency);
        _sender = sender;
        _stop = stop.Token;

        await WarmUpAsync(sender, stop.Token).ConfigureAwait(false);
        var startedAt = DateTimeOffset.UtcNow;
        var start = Stopwatch.GetTimestamp() + LeadTicks;
        _start = start;
        var scheduled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() => Schedule(start, scheduled, stop.Token))
        {
            IsBackground = true,
            Name = "load-schedule",
            Priority = ThreadPriority.AboveNormal,
        };
        thread.Start();
        await scheduled.Task.ConfigureAwait(false);

        await DrainAsync(stop).ConfigureAwait(false);
        var end = Math.Max(Volatile.Read(ref _lastCompletion), start + SecondsToTicks(_plan.TotalSeconds));
        var total = new ScenarioRecorder();
        foreach (var recorder in _recorders)
        {
            total.Add(recorder);
        }

        return new RunResult(_profile, _options.Target ?? _profile.Target, startedAt, (double)(end - start) / Stopwatch.Frequency, _recorders, total);
    }

    // One unrecorded request per [[mix]] entry before the schedule starts, as NBomber's warm-up:
    // JIT-compiling the HTTP stack takes a few hundred ms on a busy 2-core box, and would otherwise
    // show as a stall of the first second (late sends, a fat tail) that says nothing about the target.
    private async Task WarmUpAsync(RequestSender sender, CancellationToken stop)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(stop);
        limit.CancelAfter(WarmUpLimit);
        var discard = new ScenarioRecorder();
        foreach (var template in _templates)
        {
            _ = await sender.SendAsync(template, Stopwatch.GetTimestamp(), discard, limit.Token).ConfigureAwait(false);
        }
    }

    private void Schedule(long start, TaskCompletionSource done, CancellationToken stop)
    {
        try
        {
            long index = 0;
            foreach (var planned in _plan.Steps)
            {
                var step = planned.Step;
                var stepStart = start + SecondsToTicks(planned.StartSeconds);
                if (step.Kind == LoadKind.KeepConstant)
                {
                    WaitUntil(stepStart, stop);
                    var end = stepStart + SecondsToTicks(planned.DurationSeconds);
                    for (var i = 0; i < step.Concurrency && !stop.IsCancellationRequested; i++)
                    {
                        _closedLoops.Add(Task.Run(() => ClosedLoopAsync(end, stop)));
                    }
                }
                else
                {
                    var count = OpenLoopSchedule.Count(step);
                    for (long i = 0; i < count && !stop.IsCancellationRequested; i++)
                    {
                        var intended = stepStart + SecondsToTicks(OpenLoopSchedule.OffsetSeconds(step, i));
                        WaitUntil(intended, stop);
                        _options.BeforeOpenLoopSend?.Invoke(index++);
                        Dispatch(intended, Stopwatch.GetTimestamp() - intended);
                    }
                }

                WaitUntil(start + SecondsToTicks(planned.EndSeconds), stop);
            }

            done.TrySetResult();
        }
        catch (Exception ex)
        {
            done.TrySetException(ex);
        }
    }

    private void Dispatch(long intended, long lag)
    {
        var mix = _picker.Next(intended - _start);
        if (mix < 0)
        {
            return; // that entry's turn, outside its start..stop: not a request
        }

        var recorder = _recorders[mix];
        recorder.Scheduled(lag);
        if (Interlocked.Increment(ref _inFlight) > _profile.MaxInFlight)
        {
            Interlocked.Decrement(ref _inFlight);
            recorder.Error(ErrorKind.Dropped);
            _options.Log?.Add(mix, intended - _start, new SendOutcome(0, ErrorKind.Dropped, -1, 0, 0, 0));
            return;
        }

        // Through the pool: the scheduling thread only queues, and a send's own setup cost (a new
        // connection, say) never delays the next send.
        ThreadPool.UnsafeQueueUserWorkItem(new SendWorkItem(this, mix, intended), preferLocal: false);
    }

    // Closed loop: the next request goes when the last one is done, so there is no schedule to
    // fall behind; latency is measured from the actual send. Its concurrency is its own bound,
    // so it is not held to max_in_flight.
    private async Task ClosedLoopAsync(long end, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var now = Stopwatch.GetTimestamp();
            if (now >= end)
            {
                return;
            }

            var mix = _picker.NextActive(now - _start);
            if (mix < 0)
            {
                await Task.Delay(5, CancellationToken.None).ConfigureAwait(false); // no entry sends now
                continue;
            }

            _recorders[mix].Scheduled(0);
            Interlocked.Increment(ref _inFlight);
            await SendOneAsync(mix, now, stop).ConfigureAwait(false);
        }
    }

    internal Task SendScheduledAsync(int mix, long intended) => SendOneAsync(mix, intended, _stop);

    private async Task SendOneAsync(int mix, long intended, CancellationToken stop)
    {
        try
        {
            var template = _templates[mix];
            var outcome = template.Conversations > 0
                ? await template.NextConversation().TakeTurnAsync(_sender!, template, intended, _recorders[mix], stop).ConfigureAwait(false)
                : await _sender!.SendAsync(template, intended, _recorders[mix], stop).ConfigureAwait(false);
            if (outcome is { } done)
            {
                _options.Log?.Add(mix, intended - _start, done);
            }
        }
        finally
        {
            Atomic.Max(ref _lastCompletion, Stopwatch.GetTimestamp());

            Interlocked.Decrement(ref _inFlight);
        }
    }

    // After the schedule: let the requests in flight finish, for at most one request timeout
    // (plus slack), then cancel what is left.
    private async Task DrainAsync(CancellationTokenSource stop)
    {
        var deadline = Stopwatch.GetTimestamp() + SecondsToTicks(_profile.Timeout.TotalSeconds + 5);
        while (Volatile.Read(ref _inFlight) > 0 && Stopwatch.GetTimestamp() < deadline && !stop.IsCancellationRequested)
        {
            await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
        }

        await stop.CancelAsync().ConfigureAwait(false);
        var unwind = Task.WhenAll(_closedLoops);
        await Task.WhenAny(unwind, Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None)).ConfigureAwait(false);
        var spin = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 5;
        while (Volatile.Read(ref _inFlight) > 0 && Stopwatch.GetTimestamp() < spin)
        {
            await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static void WaitUntil(long deadline, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var remaining = deadline - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                return;
            }

            // Sleep until 2 ms before the deadline (Thread.Sleep may overshoot by a millisecond or
            // more), at most 50 ms at a time so that a stop is seen promptly.
            var sleepMs = (remaining - SleepAboveTicks) * 1000 / Stopwatch.Frequency;
            if (sleepMs >= 1)
            {
                Thread.Sleep((int)Math.Min(50, sleepMs));
            }
            else if (remaining > SpinBelowTicks)
            {
                Thread.Yield();
            }
            else
            {
                Thread.SpinWait(20);
            }
        }
    }

    private static long SecondsToTicks(double seconds) => (long)Math.Round(seconds * Stopwatch.Frequency);
}
