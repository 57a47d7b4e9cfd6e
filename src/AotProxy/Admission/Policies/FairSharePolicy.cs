using AotProxy.Configuration;

namespace AotProxy.Admission.Policies;

// The default: weighted fair queuing on token cost (Virtual Token Counter, OSDI'24). Everyone
// waits in one level; the next slot goes to the backlogged tenant whose class, then whose own
// counter is least. Work-conserving: a free slot is granted whenever anyone waits.
internal sealed class FairSharePolicy : ISchedulerPolicy
{
    public string Name => SchedulerPolicyNames.FairShare;

    public int Level(ClassModel classModel, int priority, SchedulerModel scheduler) => 0;

    public bool TryTakeSlot(ModelAdmission model, int level, ClassModel classModel, out int slotBucket) =>
        model.Slots.TryTake(out slotBucket);

    public TenantQueue? Next(ModelAdmission model, long now, out int slotBucket)
    {
        slotBucket = SlotBook.Unbucketed;
        if (model.Slots.Free == 0)
        {
            return null;
        }

        // All levels, not just 0: waiters queued under another policy before a reload still count.
        TenantQueue? best = null;
        foreach (var level in model.BusyLevels())
        {
            best = Fairest.In(level, best);
        }

        return best is not null && model.Slots.TryTake(out slotBucket) ? best : null;
    }
}
