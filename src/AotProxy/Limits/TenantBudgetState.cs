using AotProxy.Accounting;
using AotProxy.Configuration;

namespace AotProxy.Limits;

// One tenant's budgets and spend, kept across reloads by tenant name (TenantLimitState): tokens
// and nano-USD spent for all time and in the current calendar month (UTC), and what requests in
// flight have reserved. A request reserves its worst case (prompt estimate + max_tokens) before
// admission and settles to its usage at the end, so that concurrent requests cannot overspend
// together. Every counter is a long changed with Interlocked: no lock, no allocation (but one
// BudgetMonth per month).
internal sealed class TenantBudgetState
{
    private readonly TimeProvider _time;
    private volatile TenantBudgetModel _budget;
    private volatile BudgetMonth _month;
    private long _tokens;
    private long _nanos;
    private long _reservedTokens;
    private long _reservedNanos;

    public TenantBudgetState(TenantBudgetModel budget, TimeProvider time)
    {
        _time = time;
        _budget = budget;
        _month = new BudgetMonth(BudgetMonth.StartOf(time.GetUtcNow()));
    }

    public TenantBudgetModel Budget => _budget;

    public long SpentTokens => Interlocked.Read(ref _tokens);

    public long SpentNanos => Interlocked.Read(ref _nanos);

    public long ReservedTokens => Interlocked.Read(ref _reservedTokens);

    public long ReservedNanos => Interlocked.Read(ref _reservedNanos);

    // The current month (UTC), rolled over on the first read after its end.
    public BudgetMonth Month
    {
        get
        {
            var month = _month;
            var now = _time.GetUtcNow();
            if (month.Holds(now))
            {
                return month;
            }

            var next = new BudgetMonth(BudgetMonth.StartOf(now));
            return Interlocked.CompareExchange(ref _month, next, month) is var found && found == month ? next : found;
        }
    }

    // A reload changes the budgets; the spend and the reservations carry over.
    public void Update(TenantBudgetModel budget) => _budget = budget;

    // The ledger's totals at startup (Accounting/UsageTotals): the month's are those of the
    // current month.
    public void Seed(in UsageTotals totals)
    {
        Interlocked.Exchange(ref _tokens, totals.LifetimeTokens);
        Interlocked.Exchange(ref _nanos, totals.LifetimeCostNanos);
        _month = new BudgetMonth(BudgetMonth.StartOf(_time.GetUtcNow()), totals.MonthTokens, totals.MonthCostNanos);
    }

    // What each budget has left now: budget - spent - reserved (may be negative after usage
    // above a reservation); long.MaxValue for a budget not set.
    public long Left(BudgetKind kind) => Left(kind, _budget, Month, ReservedTokens, ReservedNanos);

    // What /api/tenants and llm_rate_limiter_budget_left show: what is left, at least 0; null for
    // a budget not set (as configured now: a reload may have just removed it).
    public long? Remaining(BudgetKind kind) => Left(kind) is var left && left != long.MaxValue ? Math.Max(left, 0) : null;

    // Reserves prompt + completion tokens and their worst-case cost against every budget. A
    // budget with nothing left beyond the prompt refuses a request that generates; a completion that does not fit is
    // capped to what fits, or refused with rejectOverrun. The reservation is added first and
    // checked after, so that two racing requests can both be refused but never both overspend.
    // streamCutoff (a stream of a tenant with stream_budget_cutoff): the prompt only is reserved,
    // and at least one completion token must fit; its completion is debited as it streams
    // (StreamBudget), so it is neither capped nor refused for its max_tokens.
    public BudgetCheck TryReserve(long promptTokens, long completionTokens, ModelPrice price, bool rejectOverrun, out BudgetReservation reservation, bool streamCutoff = false)
    {
        reservation = default;
        var budget = _budget;
        var month = Month;
        var reservedTokens = ReservedTokens;
        var reservedNanos = ReservedNanos;
        var promptNanos = price.WorstCaseNanos(promptTokens, 0);
        var allowed = completionTokens;
        var binding = BudgetKind.None;
        for (var kind = BudgetKind.Tokens; kind <= BudgetKind.MonthlyUsd; kind++)
        {
            var left = Left(kind, budget, month, reservedTokens, reservedNanos);
            if (left == long.MaxValue)
            {
                continue;
            }

            var isTokens = kind is BudgetKind.Tokens or BudgetKind.MonthlyTokens;
            var afterPrompt = left - (isTokens ? promptTokens : promptNanos);
            // A request that generates nothing (embeddings, a non-stream transcription) may use the
            // last token; one that generates needs at least one completion token beyond its prompt.
            if (afterPrompt < 0 || (afterPrompt == 0 && completionTokens > 0))
            {
                return new BudgetCheck(kind, Math.Max(left, 0), 0, Capped: false, Overrun: false);
            }

            // Spend converts to completion tokens at the output price; free output never caps.
            var fits = isTokens ? afterPrompt : price.OutputNanos > 0 ? afterPrompt / price.OutputNanos : long.MaxValue;
            if (fits < allowed)
            {
                if (fits == 0)
                {
                    // Not one completion token left to pay for: as used up as it gets.
                    return new BudgetCheck(kind, left, 0, Capped: false, Overrun: false);
                }

                if (streamCutoff)
                {
                    continue;
                }

                if (rejectOverrun)
                {
                    return new BudgetCheck(kind, left, fits, Capped: false, Overrun: true);
                }

                allowed = fits;
                binding = kind;
            }
        }

        var reserved = streamCutoff ? 0 : allowed;
        var tokens = promptTokens + reserved;
        var nanos = price.WorstCaseNanos(promptTokens, reserved);
        Interlocked.Add(ref _reservedTokens, tokens);
        Interlocked.Add(ref _reservedNanos, nanos);
        var after = (Tokens: ReservedTokens, Nanos: ReservedNanos);
        for (var kind = BudgetKind.Tokens; kind <= BudgetKind.MonthlyUsd; kind++)
        {
            var left = Left(kind, budget, month, after.Tokens, after.Nanos);
            if (left < 0)
            {
                // Others reserved meanwhile: what this request saw is gone.
                Interlocked.Add(ref _reservedTokens, -tokens);
                Interlocked.Add(ref _reservedNanos, -nanos);
                return new BudgetCheck(kind, Math.Max(left + (kind is BudgetKind.Tokens or BudgetKind.MonthlyTokens ? tokens : nanos), 0), 0, Capped: false, Overrun: false);
            }
        }

        reservation = new BudgetReservation(this, tokens, nanos, price);
        return new BudgetCheck(binding, 0, allowed, Capped: allowed < completionTokens, Overrun: false);
    }

    // The reservation goes back; admitted, the usage is charged (exact or estimated: a response
    // cut mid-way is estimated from what was relayed). No usage at all (an upstream error answer,
    // no worker, a failure before the response head) charges nothing, unlike the TPM lease: a
    // budget is what the tenant is billed, an error is not billed, and the ledger (which rebuilds
    // the budgets at startup) records the same zero.
    public void Settle(in BudgetReservation reservation, bool admitted, Usage? usage)
    {
        Release(reservation.Tokens, reservation.Nanos);
        if (!admitted || usage is not { } used)
        {
            return;
        }

        var (tokens, nanos) = (used.TotalTokens, reservation.Price.CostNanos(used));
        Interlocked.Add(ref _tokens, tokens);
        Interlocked.Add(ref _nanos, nanos);
        Month.Add(tokens, nanos);
    }

    // A stream's next tokens (StreamBudget): held like a reservation while every budget still has
    // them after all that is spent and held; else taken back at once (false: the cap is reached).
    // Two streams racing for the last token may both be refused, never both get it.
    public bool TryDebit(long tokens, long nanos)
    {
        var heldTokens = Interlocked.Add(ref _reservedTokens, tokens);
        var heldNanos = Interlocked.Add(ref _reservedNanos, nanos);
        var budget = _budget;
        var month = Month;
        for (var kind = BudgetKind.Tokens; kind <= BudgetKind.MonthlyUsd; kind++)
        {
            if (Left(kind, budget, month, heldTokens, heldNanos) < 0)
            {
                Release(tokens, nanos);
                return false;
            }
        }

        return true;
    }

    // What TryDebit held, given back.
    public void Release(long tokens, long nanos)
    {
        Interlocked.Add(ref _reservedTokens, -tokens);
        Interlocked.Add(ref _reservedNanos, -nanos);
    }

    private long Left(BudgetKind kind, TenantBudgetModel budget, BudgetMonth month, long reservedTokens, long reservedNanos) => kind switch
    {
        BudgetKind.Tokens when budget.Tokens > 0 => budget.Tokens - SpentTokens - reservedTokens,
        BudgetKind.MonthlyTokens when budget.MonthlyTokens > 0 => budget.MonthlyTokens - month.Tokens - reservedTokens,
        BudgetKind.Usd when budget.Nanos > 0 => budget.Nanos - SpentNanos - reservedNanos,
        BudgetKind.MonthlyUsd when budget.MonthlyNanos > 0 => budget.MonthlyNanos - month.Nanos - reservedNanos,
        _ => long.MaxValue,
    };
}
