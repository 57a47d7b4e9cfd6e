using AotProxy.Routing;

namespace AotProxy.Cluster;

// SharedWorkerSlots.AcquireAsync's answer: the grant, and how long the request waited for a slot to
// come free fleet-wide (zero when the first ask was granted; from the first refusal or shared
// block ask to the answer otherwise), which it counts as queued time (x-gateway-queue-ms).
// MovedTo: the pool's other worker whose slot the grant is for (a want on the pool, FleetWant),
// which the request moves to (Router.TryMove); null: the worker asked for.
internal readonly record struct SlotAcquisition(SlotGrant Grant, TimeSpan Waited, WorkerState? MovedTo = null);
