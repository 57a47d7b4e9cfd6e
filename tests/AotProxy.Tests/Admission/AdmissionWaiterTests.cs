using AotProxy.Admission;

namespace AotProxy.Tests.Admission;

public class AdmissionWaiterTests
{
    private static readonly TimeSpan Timeout5s = TimeSpan.FromSeconds(5);

    private static readonly GrantCharge Charge = new(PromptEstimate: 100, InputWeight: 1, OutputWeight: 2, TenantWeight: 3, ClassWeight: 4);

    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task TryGrant_PendingWaiter_CompletesTheWaitAsGranted()
    {
        var pool = new WaiterPool(_time, 4);
        var waiter = pool.Rent("acme", "interactive", 3, default);
        Assert.True(waiter.IsPending);

        var wait = waiter.WaitAsync(Timeout5s, CancellationToken.None);
        Assert.False(wait.IsCompleted);

        Assert.True(waiter.TryGrant());
        Assert.False(waiter.IsPending);
        Assert.False(waiter.TryGrant());
        Assert.False(waiter.TryCancel());
        Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public void Rent_SetsThePayloadAndTheTimestamp()
    {
        _time.Advance(TimeSpan.FromSeconds(7));
        var waiter = new WaiterPool(_time, 4).Rent("acme", "batch", 2, Charge);

        Assert.Equal("acme", waiter.Tenant);
        Assert.Equal("batch", waiter.Class);
        Assert.Equal(2, waiter.Bucket);
        Assert.Equal(Charge, waiter.Charge);
        Assert.Equal(_time.GetTimestamp(), waiter.EnqueuedAt);
        waiter.Abandon();
    }

    [Fact]
    public async Task WaitAsync_TimeoutElapses_CompletesTimedOutAndTryGrantReturnsFalse()
    {
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(Timeout5s, CancellationToken.None);

        _time.Advance(TimeSpan.FromMilliseconds(4999));
        Assert.False(wait.IsCompleted);
        Assert.True(waiter.IsPending);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(wait.IsCompleted);
        Assert.False(waiter.TryGrant());
        Assert.Equal(AdmissionOutcome.TimedOut, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task WaitAsync_TokenCancelled_CompletesCancelledAndTryGrantReturnsFalse()
    {
        using var cts = new CancellationTokenSource();
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(Timeout5s, cts.Token);
        Assert.False(wait.IsCompleted);

        await cts.CancelAsync();

        Assert.True(wait.IsCompleted);
        Assert.False(waiter.TryGrant());
        Assert.Equal(AdmissionOutcome.Cancelled, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task WaitAsync_TokenAlreadyCancelled_CompletesCancelledAtOnce()
    {
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);

        var wait = waiter.WaitAsync(Timeout5s, new CancellationToken(canceled: true));

        Assert.True(wait.IsCompleted);
        Assert.False(waiter.TryGrant());
        Assert.Equal(AdmissionOutcome.Cancelled, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task WaitAsync_ZeroTimeout_TimesOutAtOnce()
    {
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);

        var wait = waiter.WaitAsync(TimeSpan.Zero, CancellationToken.None);

        Assert.True(wait.IsCompleted);
        Assert.Equal(AdmissionOutcome.TimedOut, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task WaitAsync_CalledAfterTheRent_CountsTheTimeoutFromTheRent()
    {
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);
        _time.Advance(TimeSpan.FromSeconds(2));

        var wait = waiter.WaitAsync(Timeout5s, CancellationToken.None);

        _time.Advance(TimeSpan.FromMilliseconds(2999));
        Assert.False(wait.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(wait.IsCompleted);
        Assert.Equal(AdmissionOutcome.TimedOut, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task WaitAsync_InfiniteTimeout_WaitsUntilGranted()
    {
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None);

        _time.Advance(TimeSpan.FromDays(30));
        Assert.False(wait.IsCompleted);

        Assert.True(waiter.TryGrant());
        Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task WaitAsync_GrantedBeforeTheRequestWaits_ReturnsGranted()
    {
        // The scheduler can dequeue and grant between the request's enqueue and its WaitAsync.
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);
        Assert.True(waiter.TryGrant());

        var wait = waiter.WaitAsync(Timeout5s, new CancellationToken(canceled: true));

        Assert.True(wait.IsCompleted);
        Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Theory]
    [InlineData(-2d)]
    [InlineData(4_294_967_295d)]
    public void WaitAsync_TimeoutOutOfRange_Throws(double milliseconds)
    {
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);

        // WaitAsync throws synchronously, before any ValueTask exists.
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = waiter.WaitAsync(TimeSpan.FromMilliseconds(milliseconds), CancellationToken.None).AsTask(); });
        waiter.Abandon();
    }

    [Fact]
    public async Task TryCancel_PendingWaiter_CompletesCancelled()
    {
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(Timeout5s, CancellationToken.None);

        Assert.True(waiter.TryCancel());

        Assert.False(waiter.TryGrant());
        Assert.Equal(AdmissionOutcome.Cancelled, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task TimerAndToken_AfterAGrant_ChangeNothing()
    {
        using var cts = new CancellationTokenSource();
        var waiter = new WaiterPool(_time, 4).Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(Timeout5s, cts.Token);
        Assert.True(waiter.TryGrant());

        _time.Advance(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();

        Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);
        waiter.ReleaseFromQueue();
    }

    [Fact]
    public async Task Timer_LateFireFromThePreviousUse_DoesNotEndTheNextUse()
    {
        var time = new TimerCapturingTimeProvider(_time);
        var pool = new WaiterPool(time, 1);

        var first = pool.Rent("acme", "interactive", 0, default);
        var firstWait = first.WaitAsync(TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.True(first.TryGrant());
        first.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await firstWait).Outcome);

        _time.Advance(TimeSpan.FromSeconds(2));
        var second = pool.Rent("acme", "interactive", 0, default);
        Assert.Same(first, second);
        var secondWait = second.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);

        // The first use's fire, already queued when its wait ended, arrives now: past the first
        // use's deadline, 8 s before the second's.
        var timer = Assert.Single(time.Timers);
        timer.Fire();
        Assert.False(secondWait.IsCompleted);
        Assert.True(second.IsPending);

        // It re-armed the timer for the rest of the second use's wait, no more and no less.
        _time.Advance(TimeSpan.FromMilliseconds(9999));
        Assert.False(secondWait.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(secondWait.IsCompleted);
        Assert.Equal(AdmissionOutcome.TimedOut, (await secondWait).Outcome);
        second.ReleaseFromQueue();
    }

    [Fact]
    public async Task Timer_LateFireAfterTheWaiterWentBackToThePool_IsIgnored()
    {
        var time = new TimerCapturingTimeProvider(_time);
        var pool = new WaiterPool(time, 1);
        var waiter = pool.Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.True(waiter.TryGrant());
        waiter.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Single(time.Timers).Fire();

        var next = pool.Rent("acme", "interactive", 0, default);
        Assert.Same(waiter, next);
        Assert.True(next.IsPending);
        Assert.True(next.TryGrant());
        next.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await next.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task WaitAsync_TimerArmedForAnEarlierDeadline_FiresEarlyAndTimesOutAtTheNewDeadline()
    {
        var pool = new WaiterPool(_time, 1);
        var first = pool.Rent("acme", "interactive", 0, default);
        var firstWait = first.WaitAsync(Timeout5s, CancellationToken.None);
        Assert.True(first.TryGrant());
        first.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await firstWait).Outcome);

        // The timer is still armed for t = 5 s; this wait's deadline is t = 6 s.
        _time.Advance(TimeSpan.FromSeconds(1));
        var second = pool.Rent("acme", "interactive", 0, default);
        Assert.Same(first, second);
        var secondWait = second.WaitAsync(Timeout5s, CancellationToken.None);

        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(secondWait.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(secondWait.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(secondWait.IsCompleted);
        Assert.Equal(AdmissionOutcome.TimedOut, (await secondWait).Outcome);
        second.ReleaseFromQueue();
    }

    [Fact]
    public async Task WaitAsync_ShorterTimeoutThanTheTimerIsArmedFor_ArmsItEarlier()
    {
        var pool = new WaiterPool(_time, 1);
        var first = pool.Rent("acme", "interactive", 0, default);
        var firstWait = first.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(first.TryGrant());
        first.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await firstWait).Outcome);

        var second = pool.Rent("acme", "interactive", 0, default);
        var secondWait = second.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None);

        _time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.False(secondWait.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(secondWait.IsCompleted);
        Assert.Equal(AdmissionOutcome.TimedOut, (await secondWait).Outcome);
        second.ReleaseFromQueue();
    }

    [Fact]
    public async Task Token_CancelledAfterItsWaitEnded_DoesNotAffectTheNextUse()
    {
        var pool = new WaiterPool(_time, 1);
        using var firstRequest = new CancellationTokenSource();
        var first = pool.Rent("acme", "interactive", 0, default);
        var firstWait = first.WaitAsync(Timeout5s, firstRequest.Token);
        Assert.True(first.TryGrant());
        first.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await firstWait).Outcome);

        var second = pool.Rent("acme", "interactive", 0, default);
        Assert.Same(first, second);
        var secondWait = second.WaitAsync(Timeout5s, CancellationToken.None);
        await firstRequest.CancelAsync();

        Assert.False(secondWait.IsCompleted);
        Assert.True(second.TryGrant());
        second.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await secondWait).Outcome);
    }

    [Fact]
    public async Task WaitAsync_ManyUses_CreateOneTimer()
    {
        var time = new TimerCapturingTimeProvider(_time);
        var pool = new WaiterPool(time, 1);

        for (var i = 0; i < 5; i++)
        {
            var waiter = pool.Rent("acme", "interactive", 0, default);
            var wait = waiter.WaitAsync(Timeout5s, CancellationToken.None);
            if (i % 2 == 0)
            {
                Assert.True(waiter.TryGrant());
            }
            else
            {
                _time.Advance(Timeout5s);
            }

            waiter.ReleaseFromQueue();
            Assert.True(wait.IsCompleted, $"use {i}");
            Assert.Equal(i % 2 == 0 ? AdmissionOutcome.Granted : AdmissionOutcome.TimedOut, (await wait).Outcome);
        }

        Assert.Single(time.Timers);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Release_ReturnsTheWaiterToThePoolOnlyAfterBothOwners(bool queueReleasesFirst)
    {
        var pool = new WaiterPool(_time, 4);
        var waiter = pool.Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(Timeout5s, CancellationToken.None);
        Assert.True(waiter.TryGrant());
        Assert.Equal(0, pool.Count);

        if (queueReleasesFirst)
        {
            waiter.ReleaseFromQueue();
            Assert.Equal(0, pool.Count);
            Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);
        }
        else
        {
            Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);
            Assert.Equal(0, pool.Count);
            // The request is done, the tombstone or grant is still the queue's: payload intact.
            Assert.Equal("acme", waiter.Tenant);
            waiter.ReleaseFromQueue();
        }

        Assert.Equal(1, pool.Count);
        Assert.Equal(string.Empty, waiter.Tenant);
        Assert.Same(waiter, pool.Rent("beta", "batch", 1, default));
    }

    [Fact]
    public void Abandon_NeverEnqueued_ReturnsTheWaiterToThePoolAtOnce()
    {
        var pool = new WaiterPool(_time, 4);
        var waiter = pool.Rent("acme", "interactive", 0, default);

        waiter.Abandon();

        Assert.Equal(1, pool.Count);
        Assert.False(waiter.IsPending);
        var next = pool.Rent("beta", "batch", 1, default);
        Assert.Same(waiter, next);
        Assert.True(next.IsPending);
        Assert.Equal("beta", next.Tenant);
    }

    [Fact]
    public async Task Abandon_AfterWaitAsync_Throws()
    {
        var pool = new WaiterPool(_time, 4);
        var waiter = pool.Rent("acme", "interactive", 0, default);
        var wait = waiter.WaitAsync(Timeout5s, CancellationToken.None);

        Assert.Throws<InvalidOperationException>(waiter.Abandon);

        Assert.True(waiter.TryGrant());
        waiter.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await wait).Outcome);
        Assert.Equal(1, pool.Count);
    }

    [Fact]
    public void Return_PoolFull_DropsTheExtraWaiters()
    {
        var pool = new WaiterPool(_time, 2);
        var waiters = Enumerable.Range(0, 3).Select(_ => pool.Rent("acme", "interactive", 0, default)).ToArray();
        Assert.Equal(3, waiters.Distinct().Count());

        foreach (var waiter in waiters)
        {
            waiter.Abandon();
        }

        Assert.Equal(2, pool.Count);
    }

    [Fact]
    public async Task Rent_ReusedWaiter_TheFirstUsesValueTaskCannotSeeTheNextUse()
    {
        var pool = new WaiterPool(_time, 1);
        var first = pool.Rent("acme", "interactive", 0, default);
        var firstWait = first.WaitAsync(Timeout5s, CancellationToken.None);
        first.TryGrant();
        first.ReleaseFromQueue();
        await firstWait;

        var second = pool.Rent("acme", "interactive", 0, default);
        var secondWait = second.WaitAsync(Timeout5s, CancellationToken.None);
        Assert.Same(first, second);

        // A caller that kept the first ValueTask and reads it again gets an error, not the
        // second use's state: each use has its own token.
#pragma warning disable CA2012 // consumed twice on purpose
        Assert.Throws<InvalidOperationException>(() => firstWait.IsCompleted);
#pragma warning restore CA2012
        Assert.True(second.TryGrant());
        second.ReleaseFromQueue();
        Assert.Equal(AdmissionOutcome.Granted, (await secondWait).Outcome);
    }
}
