using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;

namespace AotProxy.Tests.Limits;

// One tenant's budgets on a manual clock (it starts at 2025-06-01 12:00 UTC): reservations,
// settlement to the usage, the cap and the refusals, seeding from the ledger and the month's end.
public sealed class TenantBudgetStateTests
{
    // $1 / $2 per million tokens: 1,000 and 2,000 nano-USD per token.
    private static readonly ModelPrice Price = new(1000, 1000, 2000);

    // Noon on June 1st: a month with its end a month away.
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public void TryReserve_Fits_ReservesPromptPlusMaxTokensAndTheirWorstCase()
    {
        var state = State(tokens: 1000, nanos: 1_000_000);

        var check = state.TryReserve(100, 200, Price, rejectOverrun: false, out var reservation);

        Assert.Equal(new BudgetCheck(BudgetKind.None, 0, 200, Capped: false, Overrun: false), check);
        Assert.Equal(new BudgetReservation(state, 300, (100 * 1000) + (200 * 2000), Price), reservation);
        Assert.Equal(700, state.Left(BudgetKind.Tokens));
        Assert.Equal(1_000_000 - 500_000, state.Left(BudgetKind.Usd));
        Assert.Equal(long.MaxValue, state.Left(BudgetKind.MonthlyTokens)); // not set
    }

    [Fact]
    public void Settle_Admitted_ReleasesTheReservationAndChargesTheUsage()
    {
        var state = State(tokens: 1000, monthlyNanos: 1_000_000);
        state.TryReserve(100, 200, Price, false, out var reservation);

        reservation.Settle(admitted: true, new Usage(80, 20, CachedPromptTokens: 0));

        Assert.Equal((0, 0), (state.ReservedTokens, state.ReservedNanos));
        Assert.Equal(100, state.SpentTokens);
        Assert.Equal((80 * 1000) + (20 * 2000), state.SpentNanos);
        Assert.Equal((100, 120_000), (state.Month.Tokens, state.Month.Nanos));
        Assert.Equal(900, state.Left(BudgetKind.Tokens));
        Assert.Equal(880_000, state.Left(BudgetKind.MonthlyUsd));
    }

    [Fact]
    public void Settle_NotAdmitted_ChargesNothing()
    {
        var state = State(tokens: 1000);
        state.TryReserve(100, 200, Price, false, out var reservation);

        reservation.Settle(admitted: false, usage: null);

        Assert.Equal((0, 0, 0L), (state.ReservedTokens, state.SpentTokens, state.Month.Tokens));
        Assert.Equal(1000, state.Left(BudgetKind.Tokens));
    }

    [Fact]
    public void Settle_NoUsage_ChargesNothing_AsTheLedgerRecordsIt()
    {
        var state = State(tokens: 1000);
        state.TryReserve(100, 200, Price, false, out var reservation);
        Assert.Equal(300, state.ReservedTokens);

        reservation.Settle(admitted: true, usage: null);

        Assert.Equal((0, 0, 0L), (state.ReservedTokens, state.SpentTokens, state.Month.Tokens));
        Assert.Equal(0, state.SpentNanos);
        Assert.Equal(1000, state.Left(BudgetKind.Tokens));
    }

    [Fact]
    public void TryReserve_MaxTokensAboveWhatIsLeft_IsCappedToIt()
    {
        var state = State(monthlyTokens: 500);

        var check = state.TryReserve(100, 1000, Price, rejectOverrun: false, out var reservation);

        Assert.Equal(new BudgetCheck(BudgetKind.MonthlyTokens, 0, 400, Capped: true, Overrun: false), check);
        Assert.Equal(500, reservation.Tokens);
        Assert.Equal(0, state.Left(BudgetKind.MonthlyTokens));
    }

    [Fact]
    public void TryReserve_SpendLeft_CapsAtTheOutputPrice()
    {
        // $0.001 left = 1,000,000 nanos; the prompt's 100 tokens take 100,000; 900,000 / 2,000 = 450.
        var state = State(nanos: 1_000_000);

        var check = state.TryReserve(100, 1000, Price, rejectOverrun: false, out var reservation);

        Assert.Equal(new BudgetCheck(BudgetKind.Usd, 0, 450, Capped: true, Overrun: false), check);
        Assert.Equal(1_000_000, reservation.Nanos);
    }

    [Fact]
    public void TryReserve_TheTighterBudgetCaps()
    {
        var state = State(tokens: 10_000, monthlyTokens: 300, nanos: 1_000_000);

        var check = state.TryReserve(100, 1000, Price, rejectOverrun: false, out _);

        Assert.Equal((BudgetKind.MonthlyTokens, 200L), (check.Kind, check.Completion));
    }

    [Fact]
    public void TryReserve_RejectOverrun_RefusesWhatCapWouldLower()
    {
        var state = State(tokens: 500);

        var check = state.TryReserve(100, 1000, Price, rejectOverrun: true, out var reservation);

        Assert.Equal(new BudgetCheck(BudgetKind.Tokens, 500, 400, Capped: false, Overrun: true), check);
        Assert.Null(reservation.State);
        Assert.Equal(0, state.ReservedTokens);
    }

    [Theory]
    [InlineData(100)] // the prompt alone takes all that is left
    [InlineData(50)]  // ... more than is left
    public void TryReserve_NothingLeftBeyondThePrompt_IsRefused(long left)
    {
        var state = State(monthlyTokens: left);

        var check = state.TryReserve(100, 10, Price, rejectOverrun: false, out var reservation);

        Assert.Equal(new BudgetCheck(BudgetKind.MonthlyTokens, left, 0, Capped: false, Overrun: false), check);
        Assert.Null(reservation.State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryReserve_SpendLeftBuysNoOutputToken_IsUsedUpNotAnOverrun(bool rejectOverrun)
    {
        // 100 prompt tokens take 100,000 of 101,999 nanos; 1,999 buy no token at 2,000.
        var state = State(nanos: 101_999);

        var check = state.TryReserve(100, 10, Price, rejectOverrun, out var reservation);

        Assert.Equal(new BudgetCheck(BudgetKind.Usd, 101_999, 0, Capped: false, Overrun: false), check);
        Assert.Null(reservation.State);
    }

    [Fact]
    public void TryReserve_UsedUpSpendBudget_RefusesEvenAFreeModel()
    {
        var state = State(nanos: 1500);
        state.TryReserve(1, 0, Price, false, out var reservation);
        reservation.Settle(true, new Usage(2, 0)); // 500 nano-USD over
        Assert.Equal(-500, state.Left(BudgetKind.Usd));

        var check = state.TryReserve(100, 10, default, rejectOverrun: false, out var refused);

        Assert.Equal((BudgetKind.Usd, 0L), (check.Kind, check.Left));
        Assert.Null(refused.State);
    }

    [Fact]
    public void TryReserve_ReservationsInFlight_CountAgainstTheBudget()
    {
        var state = State(tokens: 1000);
        state.TryReserve(100, 500, Price, false, out var first);

        var check = state.TryReserve(100, 500, Price, false, out var second);

        Assert.Equal((BudgetKind.Tokens, 300L, true), (check.Kind, check.Completion, check.Capped));
        first.Settle(true, new Usage(100, 50));
        second.Settle(true, new Usage(100, 300));
        Assert.Equal(450, state.Left(BudgetKind.Tokens));
    }

    [Fact]
    public void Month_AtTheMonthsEnd_StartsAgainAndTheLifetimeSpendStays()
    {
        var state = State(tokens: 10_000, monthlyTokens: 1000);
        state.TryReserve(100, 900, Price, false, out var reservation);
        reservation.Settle(true, new Usage(100, 900));
        Assert.Equal(BudgetKind.MonthlyTokens, state.TryReserve(10, 10, Price, false, out _).Kind);
        var june = state.Month;

        _clock.Advance(new DateTimeOffset(2025, 7, 1, 0, 0, 0, TimeSpan.Zero) - _clock.GetUtcNow() - TimeSpan.FromTicks(1));
        Assert.Same(june, state.Month); // the last tick of June
        _clock.Advance(TimeSpan.FromTicks(1));

        Assert.Equal(new DateTimeOffset(2025, 7, 1, 0, 0, 0, TimeSpan.Zero), state.Month.Start);
        Assert.Equal((0L, 0L), (state.Month.Tokens, state.Month.Nanos));
        Assert.Equal(1000, state.Left(BudgetKind.MonthlyTokens));
        Assert.Equal(9000, state.Left(BudgetKind.Tokens));
        Assert.True(state.TryReserve(10, 10, Price, false, out _).Kind == BudgetKind.None);
    }

    [Fact]
    public void Settle_AfterTheMonthsEnd_ChargesTheNewMonth()
    {
        var state = State(monthlyTokens: 1000);
        state.TryReserve(100, 100, Price, false, out var reservation);

        _clock.Advance(TimeSpan.FromDays(31));
        reservation.Settle(true, new Usage(100, 100));

        Assert.Equal(2025, state.Month.Start.Year);
        Assert.Equal(7, state.Month.Start.Month);
        Assert.Equal(200, state.Month.Tokens);
    }

    [Fact]
    public void Seed_SetsTheSpendFromTheLedgersTotals()
    {
        var state = State(tokens: 10_000, monthlyTokens: 1000, nanos: 5_000_000, monthlyNanos: 1_000_000);

        state.Seed(new UsageTotals("acme", LifetimeTokens: 7000, MonthTokens: 600, LifetimeCostNanos: 4_000_000, MonthCostNanos: 250_000));

        Assert.Equal((7000L, 4_000_000L), (state.SpentTokens, state.SpentNanos));
        Assert.Equal((600L, 250_000L), (state.Month.Tokens, state.Month.Nanos));
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero), state.Month.Start);
        Assert.Equal(3000, state.Left(BudgetKind.Tokens));
        Assert.Equal(400, state.Left(BudgetKind.MonthlyTokens));
        Assert.Equal(1_000_000, state.Left(BudgetKind.Usd));
        Assert.Equal(750_000, state.Left(BudgetKind.MonthlyUsd));
    }

    [Fact]
    public void TryReserve_ConcurrentRequests_NeverReserveMoreThanTheBudget()
    {
        var state = State(tokens: 10_000);
        var granted = 0L;
        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            if (state.TryReserve(10, 90, Price, rejectOverrun: true, out var reservation).Kind == BudgetKind.None)
            {
                Interlocked.Add(ref granted, reservation.Tokens);
            }
        });

        Assert.Equal(granted, state.ReservedTokens);
        Assert.InRange(granted, 100, 10_000);
    }

    // stream_budget_cutoff: a stream reserves its prompt only, whatever its max_tokens (no cap, no
    // overrun refusal), but needs room for one completion token beyond it.
    [Fact]
    public void TryReserve_StreamCutoff_ReservesThePromptOnly_NeverCaps_AndNeedsOneTokenOfRoom()
    {
        var state = State(tokens: 1000, nanos: 1_000_000);

        var check = state.TryReserve(100, 5000, Price, rejectOverrun: true, out var reservation, streamCutoff: true);

        Assert.Equal((5000L, false, false), (check.Completion, check.Capped, check.Overrun));
        Assert.Equal(new BudgetReservation(state, 100, 100 * 1000, Price), reservation);
        Assert.Equal(900, state.Left(BudgetKind.Tokens));

        var full = State(tokens: 100);
        full.TryReserve(100, 10, Price, false, out var none, streamCutoff: true);
        Assert.Null(none.State); // the prompt takes all of it: refused as used up
    }

    // Each chunk debits the tenant's remaining amount, in tokens and at the output price, until a
    // budget has less than one more token: the next is refused and nothing of it stays held.
    // Settled with the debits, the reservation goes back whole and the usage is charged once.
    [Fact]
    public void TryDebit_UpToTheCap_ThenRefused_AndSettlementChargesTheRelayedTokensOnce()
    {
        var state = State(tokens: 1000, nanos: 100_000 + (30 * 2000)); // the spend budget binds: 30 output tokens
        state.TryReserve(100, 5000, Price, false, out var reservation, streamCutoff: true);
        var stream = new StreamBudget(state, Price.OutputNanos);

        var debited = 0;
        while (debited < 100 && stream.TryDebit() == StreamDebit.Taken)
        {
            debited++;
        }

        Assert.Equal(30, debited);
        Assert.Equal((30L, 30L * 2000), (stream.Tokens, stream.Nanos));
        Assert.Equal((130L, 100_000L + (30 * 2000)), (state.ReservedTokens, state.ReservedNanos));
        Assert.Equal(0, state.Left(BudgetKind.Usd));

        reservation.With(stream).Settle(admitted: true, Usage.Estimate(100, stream.Tokens));

        Assert.Equal((0L, 0L), (state.ReservedTokens, state.ReservedNanos));
        Assert.Equal((130L, 160_000L), (state.SpentTokens, state.SpentNanos));
        Assert.Equal(0, state.Left(BudgetKind.Usd));
    }

    // Several streams of one tenant draw on one remaining amount: together they relay exactly what
    // was left, whichever of them gets each token.
    [Fact]
    public async Task TryDebit_ConcurrentStreams_ShareTheRemainingAmount_NeverPassingIt()
    {
        var state = State(tokens: 10_000);
        var streams = new StreamBudget[4];
        var reservations = new BudgetReservation[4];
        for (var i = 0; i < 4; i++)
        {
            state.TryReserve(100, 100_000, Price, false, out reservations[i], streamCutoff: true);
            streams[i] = new StreamBudget(state, Price.OutputNanos);
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(() =>
        {
            for (var n = 0; n < 20_000 && streams[i].TryDebit() == StreamDebit.Taken; n++)
            {
            }
        }))).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(10_000 - 400, streams.Sum(s => s.Tokens));
        Assert.Equal(0, state.Left(BudgetKind.Tokens));
        for (var i = 0; i < 4; i++)
        {
            reservations[i].With(streams[i]).Settle(admitted: true, Usage.Estimate(100, streams[i].Tokens));
        }

        Assert.Equal((0L, 10_000L), (state.ReservedTokens, state.SpentTokens));
    }

    // The per-chunk check runs on the relay's hot path: it allocates nothing.
    [Fact]
    public void TryDebit_AllocatesNothing()
    {
        var state = State(tokens: 1_000_000, monthlyNanos: 1_000_000_000);
        var stream = new StreamBudget(state, Price.OutputNanos);
        stream.TryDebit(); // the month is read once before

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            Assert.True(stream.TryDebit() == StreamDebit.Taken); // Assert.Equal of an enum would allocate
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(10_001, stream.Tokens);
    }

    // [cluster]: a chunk taken from the fleet block the stream holds is a local decrement too; the
    // chunk after the block asks for the next one, having debited nothing.
    [Fact]
    public void TryDebit_FromAFleetBlock_AllocatesNothing_AndAsksForTheNextBlockWhenItRunsOut()
    {
        var state = State(tokens: 1_000_000);
        var place = new AotProxy.Cluster.SharedPlace(new AotProxy.Cluster.SharedTenantLimits(() => null, () => "one"), default, Second: 1);
        var stream = new StreamBudget(state, Price.OutputNanos, place);
        Assert.Equal(StreamDebit.NeedsBlock, stream.TryDebit());
        stream.Add(10_001);
        stream.TryDebit(); // the month is read once before

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            Assert.True(stream.TryDebit() == StreamDebit.Taken); // Assert.Equal of an enum would allocate
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(StreamDebit.NeedsBlock, stream.TryDebit());
        Assert.Equal((10_001L, 10_001L, 10_001L), (stream.Tokens, stream.Leased, state.ReservedTokens));
    }

    // The forwarder's failure path: debits of a response that was not accounted go back uncharged.
    [Fact]
    public void GiveBack_ReturnsTheDebits_WithoutACharge()
    {
        var state = State(tokens: 1000);
        var stream = new StreamBudget(state, Price.OutputNanos);
        Assert.True(stream.TryDebit() == StreamDebit.Taken && stream.TryDebit() == StreamDebit.Taken);

        stream.GiveBack();

        Assert.Equal((0L, 0L, 0L), (state.ReservedTokens, state.ReservedNanos, state.SpentTokens));
        Assert.Equal(0, stream.Tokens);
    }

    private TenantBudgetState State(long tokens = 0, long monthlyTokens = 0, long nanos = 0, long monthlyNanos = 0) =>
        new(new TenantBudgetModel(tokens, monthlyTokens, nanos, monthlyNanos), _clock);
}
