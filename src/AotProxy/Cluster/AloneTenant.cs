using AotProxy.Configuration;
using AotProxy.Limits;

namespace AotProxy.Cluster;

// One tenant's part of an outage's record (StoreDownPolicy): what this replica admitted alone
// while the store did not answer, which StoreResync charges into the store once it answers.
// Requests and Tokens count by second (their limits are never checked: the shares are checked
// against the tenant's own MinuteLimit windows); BudgetTokens / BudgetNanos are the budget
// reservations admitted alone in this outage, never given back before it ends (so the share
// check errs towards refusing); SpentTokens / SpentNanos what those requests settled to, in
// Month (yyyymm), to be added to the fleet's spend.
internal sealed class AloneTenant(TimeProvider time)
{
    private long _budgetTokens;
    private long _budgetNanos;
    private long _spentTokens;
    private long _spentNanos;
    private int _month;

    public SlidingWindow Requests { get; } = new(TokenBucket.MaxCapacity, time);

    public SlidingWindow Tokens { get; } = new(TokenBucket.MaxCapacity, time);

    public long SpentTokens => Interlocked.Read(ref _spentTokens);

    public long SpentNanos => Interlocked.Read(ref _spentNanos);

    public int Month => Volatile.Read(ref _month);

    // Reserves against this replica's share of each budget set (floor(budget / N), at least 1),
    // added first and checked after, as TenantBudgetState: two racing requests may both be
    // refused, never both pass over. BudgetKind.None when it fits; else the budget that refused
    // and what its share had left.
    public (BudgetKind Kind, long Left) TryReserve(TenantBudgetModel budget, long tokens, long nanos, int members)
    {
        var reservedTokens = Interlocked.Add(ref _budgetTokens, tokens);
        var reservedNanos = Interlocked.Add(ref _budgetNanos, nanos);
        for (var kind = BudgetKind.Tokens; kind <= BudgetKind.MonthlyUsd; kind++)
        {
            var limit = kind switch
            {
                BudgetKind.Tokens => budget.Tokens,
                BudgetKind.MonthlyTokens => budget.MonthlyTokens,
                BudgetKind.Usd => budget.Nanos,
                _ => budget.MonthlyNanos,
            };
            var isTokens = kind is BudgetKind.Tokens or BudgetKind.MonthlyTokens;
            var reserved = isTokens ? reservedTokens : reservedNanos;
            var share = LocalShare.Of(limit, members);
            if (limit > 0 && reserved > share)
            {
                Interlocked.Add(ref _budgetTokens, -tokens);
                Interlocked.Add(ref _budgetNanos, -nanos);
                return (kind, Math.Max(share - (reserved - (isTokens ? tokens : nanos)), 0));
            }
        }

        return (BudgetKind.None, 0);
    }

    public void Spend(long tokens, long nanos, int month)
    {
        Interlocked.Add(ref _spentTokens, tokens);
        Interlocked.Add(ref _spentNanos, nanos);
        Volatile.Write(ref _month, month);
    }
}
