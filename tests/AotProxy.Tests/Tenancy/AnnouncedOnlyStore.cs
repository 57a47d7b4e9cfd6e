using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A shared store (a real PostgresTenantStore) without its re-read safety net: the directory's wait
// for a change is handed on with an hour for RereadInterval, so another replica's change reaches the
// directory only through its announcement (the NOTIFY in the change's own commit), or through a
// failed wait's reconnect, which is counted. What the directory asked for is kept: the mechanism
// behind "a revoke holds on every replica within 1 s" (SPEC), read without a wall clock.
internal sealed class AnnouncedOnlyStore(ISharedTenantStore inner) : DelegatingTenantStore(inner), ISharedTenantStore
{
    private readonly ISharedTenantStore _inner = inner;
    private static readonly TimeSpan NoReread = TimeSpan.FromHours(1);

    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _askedTicks;
    private int _waits;
    private int _failures;

    // The interval the directory would have re-read the store after, with no announcement.
    public TimeSpan Asked => TimeSpan.FromTicks(Interlocked.Read(ref _askedTicks));

    // Waits that ended in a TenantStoreException (after which the directory reconnects and reads).
    public int Failures => Volatile.Read(ref _failures);

    // Completed when the directory waits for a change on a listening connection: its first wait
    // sets up the LISTEN and returns at once, so from its second one on, changes are announced to it.
    public Task Listening => _listening.Task;

    public async Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _askedTicks, timeout.Ticks);
        if (Interlocked.Increment(ref _waits) == 2)
        {
            _listening.TrySetResult();
        }

        try
        {
            return await _inner.WaitForChangeAsync(NoReread, cancellationToken);
        }
        catch (TenantStoreException)
        {
            Interlocked.Increment(ref _failures);
            throw;
        }
    }
}
