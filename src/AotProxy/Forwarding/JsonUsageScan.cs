using AotProxy.Accounting;
using AotProxy.Threading;

namespace AotProxy.Forwarding;

// The relay's JSON half, on the heap and pooled: a JSON answer rents one for its usage scanner
// (144 B) and gives it back at its end, so the relay that a stream holds to its end (in the
// forwarder's box, between every two tokens) does not carry an unused scanner beside its SSE filter
// (perf/RESULTS.md, issue 22, third pass). 1,024 idle, as the async method boxes: the hot path
// allocates none once the gateway has served that many JSON answers at the same time.
internal sealed class JsonUsageScan
{
    private static readonly IdlePool<JsonUsageScan> Idle = new(1024);

    public UsageJsonScanner Scanner;

    private JsonUsageScan()
    {
    }

    public static JsonUsageScan Rent() => Idle.TryRent() ?? new JsonUsageScan();

    public static void Return(JsonUsageScan scan)
    {
        scan.Scanner = default;
        Idle.Return(scan);
    }
}
