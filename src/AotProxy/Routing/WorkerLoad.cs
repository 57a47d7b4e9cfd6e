namespace AotProxy.Routing;

// What the balancers compare: the worker's queue and batch, corrected with the requests the
// gateway sent since the last scrape. Fresh = from a recent scrape; otherwise it is derived from
// the gateway's own in-flight count (stale or missing gauges never stop routing).
internal readonly record struct WorkerLoad(double Waiting, double Running, double KvUsage, bool Fresh)
{
    // Requests on the worker, queued or running: the unit of the affinity thresholds.
    public double Requests => Waiting + Running;
}
