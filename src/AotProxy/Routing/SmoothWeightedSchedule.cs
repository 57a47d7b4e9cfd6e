namespace AotProxy.Routing;

// nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every step each worker's
// current weight grows by its weight, the largest is picked and loses the total. Weights 5,1,1
// give a,a,b,a,c,a,a rather than a,a,a,a,a,b,c. The sequence repeats after sum(weights) steps.
internal static class SmoothWeightedSchedule
{
    // 4,096 steps: weights are scaled down to fit, keeping ratios to within a fraction of a percent.
    public const int MaxLength = 4096;

    public static int[] Build(WorkerState[] workers)
    {
        if (workers.Length == 0)
        {
            return [];
        }

        var weights = new long[workers.Length];
        long total = 0;
        for (var i = 0; i < workers.Length; i++)
        {
            weights[i] = Math.Max(1, workers[i].Model.Weight);
            total += weights[i];
        }

        if (total > MaxLength)
        {
            var sum = total;
            total = 0;
            for (var i = 0; i < weights.Length; i++)
            {
                weights[i] = Math.Max(1, weights[i] * MaxLength / sum);
                total += weights[i];
            }
        }

        var current = new long[weights.Length];
        var schedule = new int[total];
        for (var step = 0; step < schedule.Length; step++)
        {
            var best = 0;
            for (var i = 0; i < weights.Length; i++)
            {
                current[i] += weights[i];
                if (current[i] > current[best])
                {
                    best = i;
                }
            }

            current[best] -= total;
            schedule[step] = best;
        }

        return schedule;
    }
}
