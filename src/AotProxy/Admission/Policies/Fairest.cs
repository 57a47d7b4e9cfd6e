namespace AotProxy.Admission.Policies;

// Hierarchical VTC: the class with the least counter first, then the tenant with the least
// counter inside it. Comparing (class counter, tenant counter) in that order picks exactly that.
internal static class Fairest
{
    public static bool IsFairer(TenantQueue candidate, TenantQueue? best)
    {
        if (best is null)
        {
            return true;
        }

        var classCounter = candidate.Class.Counter;
        var bestClass = best.Class.Counter;
        return classCounter < bestClass || (classCounter == bestClass && candidate.Tenant.Counter < best.Tenant.Counter);
    }

    // The fairest sub-queue of a level that has a waiter at its head, or null.
    public static TenantQueue? In(QueueLevel level, TenantQueue? best, Func<TenantQueue, bool>? only = null)
    {
        foreach (var queue in level.Queues)
        {
            if (queue.Count > 0 && (only is null || only(queue)) && IsFairer(queue, best))
            {
                best = queue;
            }
        }

        return best;
    }
}
