namespace AotProxy.Routing.Policies;

// The candidate with the lowest key, ties to fewer requests in flight, then to whichever the scan
// met first; the scan starts at a random worker so that ties spread instead of all landing on the
// first one. The key is a static lambda: no allocation per pick; it gets the worker's pool index.
internal static class LowestScan
{
    public static int Pick(WorkerPool pool, in RouteContext context, Func<WorkerPool, int, RouteContext, double> key)
    {
        var workers = pool.Workers;
        if (workers.Length == 0)
        {
            return -1;
        }

        var best = -1;
        var bestKey = double.MaxValue;
        var bestInFlight = int.MaxValue;
        var start = context.Random.Next(workers.Length);
        for (var i = 0; i < workers.Length; i++)
        {
            var index = (start + i) % workers.Length;
            if (!context.IsCandidate(workers, index))
            {
                continue;
            }

            var worker = workers[index];
            var value = key(pool, index, context);
            var inFlight = worker.InFlight;
            if (value < bestKey || (value == bestKey && inFlight < bestInFlight))
            {
                best = index;
                bestKey = value;
                bestInFlight = inFlight;
            }
        }

        return best;
    }
}
