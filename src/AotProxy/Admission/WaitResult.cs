namespace AotProxy.Admission;

// How a wait ended, and for a grant which bucket's slot it got (SlotBook.Unbucketed when buckets
// do not apply): the request reads both from the result, as it must not touch the waiter after
// its await.
internal readonly record struct WaitResult(AdmissionOutcome Outcome, int SlotBucket);
