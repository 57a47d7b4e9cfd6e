using AotProxy.Routing;

namespace AotProxy.Cluster;

// What a request waiting for a worker's slot fleet-wide (SharedWorkerSlots.AcquireAsync) brings to
// the grant script: its priority (a grant leaves the slots a more important want elsewhere waits
// for), and whether it may preempt: a class of a lower priority is preemptible, so its refusal
// writes a want that a holder of such a request answers (docs/design/admission20-queue.md).
// Pool: the workers it could be routed to (its model's pool); a want that may preempt names them
// all, and the request takes whichever's slot comes free first (null: the worker asked only).
// default: priority 0, never held back, preempting nobody (the store's own tests).
internal readonly record struct FleetWant(int Priority, bool MayPreempt, WorkerState[]? Pool = null);
