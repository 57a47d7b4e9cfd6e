using AotProxy.Configuration;

namespace AotProxy.Admission.Policies;

// Who gets the next free slot of a model pool (`scheduler.policy`). A policy decides the queue
// level a request waits in, whether a request may take a slot straight away, and which tenant
// sub-queue's head is granted next. It runs inside the pool's dispatcher, one thread at a time.
internal interface ISchedulerPolicy
{
    string Name { get; }

    // The level (a ModelAdmission queue level) a request of this class and priority waits in.
    int Level(ClassModel classModel, int priority, SchedulerModel scheduler);

    // Takes a slot for a request of this level and class; slotBucket says which bucket's slot
    // it took (SlotBook.Unbucketed when buckets do not apply).
    bool TryTakeSlot(ModelAdmission model, int level, ClassModel classModel, out int slotBucket);

    // The sub-queue whose head gets the next slot, with that slot already taken; null when no
    // waiter can be granted now.
    TenantQueue? Next(ModelAdmission model, long now, out int slotBucket);
}
