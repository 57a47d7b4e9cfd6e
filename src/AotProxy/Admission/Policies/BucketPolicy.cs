using AotProxy.Configuration;

namespace AotProxy.Admission.Policies;

// Capacity buckets: each bucket is guaranteed its share of the slots (scheduler.bucket_shares),
// each class owns a range of buckets. A class takes its own buckets' slots; in "atleast" mode it
// may also take an idle slot of any lower-priority bucket (a higher index with nobody waiting),
// in "strict" mode never. Buckets are served in order, tenants inside one by fair share.
internal sealed class BucketPolicy : ISchedulerPolicy
{
    public string Name => SchedulerPolicyNames.Bucket;

    public int Level(ClassModel classModel, int priority, SchedulerModel scheduler) => First(classModel, scheduler.BucketCount);

    public bool TryTakeSlot(ModelAdmission model, int level, ClassModel classModel, out int slotBucket)
    {
        var buckets = model.Scheduler.BucketCount;
        var last = Last(classModel, level, buckets);
        for (var bucket = level; bucket <= last; bucket++)
        {
            if (model.Slots.TryTakeBucket(bucket))
            {
                slotBucket = bucket;
                return true;
            }
        }

        if (!classModel.Strict)
        {
            for (var bucket = last + 1; bucket < buckets; bucket++)
            {
                if (model.WaitingAt(bucket) == 0 && model.Slots.TryTakeBucket(bucket))
                {
                    slotBucket = bucket;
                    return true;
                }
            }
        }

        slotBucket = SlotBook.Unbucketed;
        return false;
    }

    // Preemption (ModelAdmission.Preempt): may a waiter of class `waiting` take the slot of
    // `bucket` that a request of class `holder` holds? Only where the policy would have let it take
    // that slot free: one of its own buckets (a bucket both classes own included: there priority
    // decides), or, for a class that is not strict, a lower bucket (a higher index) that the holder
    // only borrowed and that nobody waits for. A slot of the holder's own buckets stays: it is
    // that class's guarantee (scheduler.bucket_shares), which preemption does not take back.
    public static bool MayTake(ModelAdmission model, ClassModel waiting, ClassModel holder, int bucket)
    {
        var buckets = model.Scheduler.BucketCount;
        var first = First(waiting, buckets);
        var last = Last(waiting, first, buckets);
        if (bucket >= first && bucket <= last)
        {
            return true;
        }

        var holderFirst = First(holder, buckets);
        var holds = bucket >= holderFirst && bucket <= Last(holder, holderFirst, buckets);
        return !waiting.Strict && bucket > last && !holds && model.WaitingAt(bucket) == 0;
    }

    private static int First(ClassModel classModel, int buckets) => Math.Min(classModel.FirstBucket, buckets - 1);

    private static int Last(ClassModel classModel, int first, int buckets) => Math.Min(Math.Max(classModel.LastBucket, first), buckets - 1);

    public TenantQueue? Next(ModelAdmission model, long now, out int slotBucket)
    {
        foreach (var level in model.BusyLevels())
        {
            // The fairest tenant first; if its buckets are full, the fairest one whose class may
            // still borrow an idle lower bucket (a strict class ahead must not block it).
            var bucket = Math.Min(level.Index, model.Scheduler.BucketCount - 1);
            var best = Fairest.In(level, null);
            if (best?.ClassModel is { } classModel && TryTakeSlot(model, bucket, classModel, out slotBucket))
            {
                return best;
            }

            var borrower = Fairest.In(level, null, static queue => queue.ClassModel is { Strict: false });
            if (borrower is not null && borrower != best && TryTakeSlot(model, bucket, borrower.ClassModel!, out slotBucket))
            {
                return borrower;
            }
        }

        slotBucket = SlotBook.Unbucketed;
        return null;
    }
}
