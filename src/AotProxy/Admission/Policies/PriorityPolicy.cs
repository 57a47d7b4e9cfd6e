using AotProxy.Configuration;

namespace AotProxy.Admission.Policies;

// Strict priority between levels (0 first), fair share between the tenants of one level. Aging
// prevents starvation: a waiter rises one level per aging interval (scheduler.aging_factor x the
// recent median request duration), so a P4 request competes as P0 after 4 intervals.
internal sealed class PriorityPolicy : ISchedulerPolicy
{
    public string Name => SchedulerPolicyNames.Priority;

    public int Level(ClassModel classModel, int priority, SchedulerModel scheduler) => Math.Clamp(priority, 0, 9);

    public bool TryTakeSlot(ModelAdmission model, int level, ClassModel classModel, out int slotBucket) =>
        model.Slots.TryTake(out slotBucket);

    public TenantQueue? Next(ModelAdmission model, long now, out int slotBucket)
    {
        slotBucket = SlotBook.Unbucketed;
        if (model.Slots.Free == 0)
        {
            return null;
        }

        var aging = model.AgingInterval(now);
        TenantQueue? best = null;
        var bestLevel = int.MaxValue;
        foreach (var level in model.BusyLevels())
        {
            foreach (var queue in level.Queues)
            {
                if (!queue.TryPeek(out var head))
                {
                    continue;
                }

                // Each sub-queue is FIFO, so its head waited longest and decides its level (a
                // requeued head in front: from its first arrival, ArrivedAt).
                var effective = Effective(level.Index, now - head.ArrivedAt, aging);
                if (effective < bestLevel || (effective == bestLevel && Fairest.IsFairer(queue, best)))
                {
                    best = queue;
                    bestLevel = effective;
                }
            }
        }

        return best is not null && model.Slots.TryTake(out slotBucket) ? best : null;
    }

    // The level minus one per full aging interval waited, never above 0.
    internal static int Effective(int level, long waited, long aging) =>
        aging <= 0 ? level : (int)Math.Max(0, level - (waited / aging));
}
