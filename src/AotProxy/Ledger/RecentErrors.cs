using AotProxy.Http;
using AotProxy.Routing;

namespace AotProxy.Ledger;

// The last failed requests, newest last, for the live console: a fixed ring filled by RecordStage,
// the one place where a request's outcome is counted. Only failures come here: the success path
// pays one comparison (RecordStage), an error allocates its record and takes the lock.
internal sealed class RecentErrors(TimeProvider time, int capacity = RecentErrors.DefaultCapacity)
{
    public const int DefaultCapacity = 50;

    private readonly Lock _lock = new();
    private readonly FailedRequest?[] _ring = new FailedRequest?[capacity];
    private long _count;

    // Every error seen since the start (the ring keeps the last `capacity`).
    public long Count => Interlocked.Read(ref _count);

    public void Add(int status, string code, string tenant, string model, string worker, string message)
    {
        var entry = new FailedRequest(time.GetUtcNow(), status, code, tenant, model, worker, message);
        lock (_lock)
        {
            _ring[_count % _ring.Length] = entry;
            _count++;
        }
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
        lock (_lock)
        {
            var n = (int)Math.Min(_count, _ring.Length);
            var result = new FailedRequest[n];
            for (var i = 0; i < n; i++)
            {
                result[i] = _ring[(_count - n + i) % _ring.Length]!;
            }

            return result;
        }
    }
}
