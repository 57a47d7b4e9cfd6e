using AotProxy.Routing;

namespace AotProxy.Admission;

// What a preempted request gives the waiter it was preempted for (ModelAdmission.Yield, then
// HandOver): its admission slot, and the worker slot its cancelled attempt held, with the fleet's
// grant on it under [cluster] (none when it was preempted between attempts). Handed over whole,
// so no other request, here or on another replica, takes the slot in between.
internal readonly record struct SlotHandover(int Bucket, WorkerSlot Worker);
