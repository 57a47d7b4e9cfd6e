namespace AotProxy.Limits;

// One tenant's spend in one calendar month (UTC). A new month gets a new instance, swapped in
// with one CompareExchange (TenantBudgetState), so the month and its counters never tear; a
// charge racing the swap lands in the month it read, once per tenant per month.
internal sealed class BudgetMonth(DateTimeOffset start, long tokens = 0, long nanos = 0)
{
    private long _tokens = tokens;
    private long _nanos = nanos;

    public DateTimeOffset Start { get; } = start;

    public DateTimeOffset End { get; } = start.AddMonths(1);

    public long Tokens => Interlocked.Read(ref _tokens);

    public long Nanos => Interlocked.Read(ref _nanos);

    public static DateTimeOffset StartOf(DateTimeOffset utcNow) => new(utcNow.Year, utcNow.Month, 1, 0, 0, 0, TimeSpan.Zero);

    public bool Holds(DateTimeOffset utcNow) => utcNow >= Start && utcNow < End;

    public void Add(long tokens, long nanos)
    {
        Interlocked.Add(ref _tokens, tokens);
        Interlocked.Add(ref _nanos, nanos);
    }
}
