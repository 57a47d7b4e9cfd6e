using System.Collections.Concurrent;
using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A shared tenant store whose socket work runs on one thread, as in the binary with inline socket
// completions (Gateway/EventLoop.cs): the wait for a change ends on that thread (each change
// announces itself there, as a NOTIFY arrives on the listening socket), and each read needs that
// thread free (a synchronous Npgsql read on a socket the runtime made non-blocking waits for the
// epoll thread to see the data). The data itself is a real SqliteTenantStore's.
internal sealed class EventLoopStore : ISharedTenantStore
{
    // A read the loop has not run by then: the loop is blocked (the test fails, it does not hang).
    public static readonly TimeSpan ReadBound = TimeSpan.FromSeconds(5);

    private readonly ITenantStore _inner;
    private readonly BlockingCollection<Action> _work = [];
    private readonly Thread _loop;
    private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<bool>? _change;

    public EventLoopStore(ITenantStore inner)
    {
        _inner = inner;
        _loop = new Thread(() =>
        {
            foreach (var work in _work.GetConsumingEnumerable())
            {
                work();
            }
        })
        { IsBackground = true, Name = "event loop" };
        _loop.Start();
    }

    public string Description => _inner.Description;

    // Completed when the watch loop first waits for a change.
    public Task Waiting => _waiting.Task;

    public Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Default options: the waiter's continuation runs on the thread that completes it (the loop).
        var change = new TaskCompletionSource<bool>();
        cancellationToken.Register(() => change.TrySetCanceled(cancellationToken));
        Volatile.Write(ref _change, change);
        _waiting.TrySetResult();
        return change.Task;
    }

    public StoreContents Load() => OnLoop(_inner.Load);

    public long Version() => OnLoop(_inner.Version);

    public bool InsertTenant(StoredTenant tenant, AuditEntry audit) => Announced(_inner.InsertTenant(tenant, audit));

    public bool UpdateTenant(StoredTenant tenant, AuditEntry audit) => Announced(_inner.UpdateTenant(tenant, audit));

    public bool DeleteTenant(string name, AuditEntry audit) => Announced(_inner.DeleteTenant(name, audit));

    public bool InsertKey(StoredKey key, AuditEntry audit) => Announced(_inner.InsertKey(key, audit));

    public bool RevokeKey(string tenant, string id, long revokedAtMs, AuditEntry audit) => Announced(_inner.RevokeKey(tenant, id, revokedAtMs, audit));

    public bool RotateKey(string tenant, string oldId, long validUntilMs, StoredKey next, AuditEntry audit) => Announced(_inner.RotateKey(tenant, oldId, validUntilMs, next, audit));

    public void AppendAudit(AuditEntry audit) => _inner.AppendAudit(audit);

    public void WriteLastUsed(IReadOnlyList<(string Id, long Second)> uses) => _inner.WriteLastUsed(uses);

    public IReadOnlyList<AuditEntry> ReadAudit(long sinceMs, int limit) => _inner.ReadAudit(sinceMs, limit);

    public void Dispose()
    {
        _work.CompleteAdding();
        _loop.Join(ReadBound);
        _inner.Dispose();
    }

    // The announcement reaches the loop thread after the change committed, as a NOTIFY does.
    private bool Announced(bool changed)
    {
        _work.Add(() => Interlocked.Exchange(ref _change, null)?.TrySetResult(true));
        return changed;
    }

    private T OnLoop<T>(Func<T> read)
    {
        if (Thread.CurrentThread == _loop)
        {
            return read();
        }

        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try
            {
                done.SetResult(read());
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        });
        return done.Task.Wait(ReadBound)
            ? done.Task.Result
            : throw new TenantStoreException($"the event loop did not run a read within {ReadBound.TotalSeconds} s: a continuation blocks it");
    }
}
