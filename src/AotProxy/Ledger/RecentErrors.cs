using AotProxy.Http;
using AotProxy.Routing;

namespace AotProxy.Ledger;

// The last failed requests, newest last, for the live console: a fixed ring filled by RecordStage,
// the one place where a request's outcome is counted. Only failures come here: the success path
// pays one comparison (RecordStage), an error allocates its record and claims a slot with one
// Interlocked.Increment, no lock, so that a flood of bad keys does not queue its threads on one.
// A snapshot taken while errors arrive may miss a slot not yet written or show one just
// overwritten: the console's list is a view, not a record (the ledger is).
internal sealed class RecentErrors(TimeProvider time, int capacity = RecentErrors.DefaultCapacity)
{
    public const int DefaultCapacity = 50;

    private readonly FailedRequest?[] _ring = new FailedRequest?[capacity];
    private long _count;

    // Every error seen since the start (the ring keeps the last `capacity`).
    public long Count => Interlocked.Read(ref _count);

    public void Add(int status, string code, string tenant, string model, string worker, string message)
    {
        var entry = new FailedRequest(time.GetUtcNow(), status, code, tenant, model, worker, message);
        var slot = Interlocked.Increment(ref _count) - 1;
        Volatile.Write(ref _ring[slot % _ring.Length], entry);
    }

    // An identified request that failed: its code and message from how it ended.
    public void Add(ProxyRequest request)
    {
        var (code, message) = request.Failure switch
        {
            ProxyFailure.None => ("worker_status", $"worker {request.Worker} answered {request.Status}"),
            ProxyFailure.Upstream => (EnumNames.Snake(request.Forward.Error), $"worker {request.Worker} failed: {EnumNames.Snake(request.Forward.Error)}"),
            var failure => (EnumNames.Snake(failure), request.Outcome),
        };
        Add(request.Status, code, request.Caller.Tenant.Name, request.Model, request.Worker, message);
    }

    // Oldest first.
    public FailedRequest[] Snapshot()
    {
        var count = Count;
        var n = (int)Math.Min(count, _ring.Length);
        var result = new List<FailedRequest>(n);
        for (var i = 0; i < n; i++)
        {
            if (Volatile.Read(ref _ring[(count - n + i) % _ring.Length]) is { } entry)
            {
                result.Add(entry);
            }
        }

        return [.. result];
    }
}
