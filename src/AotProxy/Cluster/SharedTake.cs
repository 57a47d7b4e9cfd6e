using AotProxy.Limits;

namespace AotProxy.Cluster;

// The admit script's answer: taken in Second (Redis's clock, in Unix seconds, which the
// settlement names), refused by one dimension (Refusal; for a budget, Budget and what it had
// Left) with how long until it has room (RetryAfter; zero for a budget), or no answer (StoreDown).
internal readonly record struct SharedTake(SharedTakeOutcome Outcome, long Second, TimeSpan RetryAfter, LimitRefusal Refusal = LimitRefusal.None, BudgetKind Budget = BudgetKind.None, long Left = 0)
{
    public static SharedTake StoreDown { get; } = new(SharedTakeOutcome.StoreDown, 0, TimeSpan.Zero);

    public bool Taken => Outcome == SharedTakeOutcome.Taken;
}
