using AotProxy.Routing;

namespace AotProxy.Admission;

// How a wait ended, and for a grant which bucket's slot it got (SlotBook.Unbucketed when buckets
// do not apply) and the worker slot behind it: the request reads them from the result, as it must
// not touch the waiter after its await.
internal readonly record struct WaitResult(AdmissionOutcome Outcome, int SlotBucket, WorkerSlot Slot = default);
