namespace AotProxy.Admin.Contracts;

// One worker's samples, one a second, oldest first, ending at LastSecond (Unix seconds): in
// flight through the gateway, and its scraped running, waiting and KV cache use (null: no fresh
// scrape that second). The arrays have the same length.
internal sealed record WorkerHistoryReport(string Name, long LastSecond, int[] InFlight, double?[] Running, double?[] Waiting, double?[] Kv);
