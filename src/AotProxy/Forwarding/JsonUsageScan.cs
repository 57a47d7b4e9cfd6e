using AotProxy.Accounting;

namespace AotProxy.Forwarding;

// The relay's JSON half, on the heap and pooled: a JSON answer rents one for its usage scanner
// (144 B) and gives it back at its end, so the relay that a stream holds to its end (in the
// forwarder's box, between every two tokens) does not carry an unused scanner beside its SSE filter
// (perf/RESULTS.md, issue 22, third pass). 1,024 idle, as the async method boxes: the hot path
// allocates none once the gateway has served that many JSON answers at the same time.
internal sealed class JsonUsageScan
{
    private const int Capacity = 1024;

    private static readonly Lock PoolLock = new();
    private static readonly JsonUsageScan?[] Idle = new JsonUsageScan?[Capacity];
    private static int _pooled;

    public UsageJsonScanner Scanner;

    private JsonUsageScan()
    {
    }

    public static JsonUsageScan Rent()
    {
        lock (PoolLock)
        {
            if (_pooled > 0)
            {
                var scan = Idle[--_pooled]!;
                Idle[_pooled] = null;
                return scan;
            }
        }

        return new JsonUsageScan();
    }

    public static void Return(JsonUsageScan scan)
    {
        scan.Scanner = default;
        lock (PoolLock)
        {
            if (_pooled < Capacity)
            {
                Idle[_pooled++] = scan;
            }
        }
    }
}
