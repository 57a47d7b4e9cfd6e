namespace AotProxy.Cluster;

// A replica's share of a fleet-wide limit while the store does not answer: limit / N, N the live
// members at the last good heartbeat. At least 1, so that every replica can still reach a worker
// with fewer slots than replicas (then up to N run there at once, not max_concurrency).
// The one place the share is computed; the store_down modes (issue 16) build on it.
internal static class LocalShare
{
    public static int Of(int limit, int members) => (int)Of((long)limit, members);

    public static long Of(long limit, int members) => Math.Max(1, limit / Math.Max(1, members));
}
