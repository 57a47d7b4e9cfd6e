using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Admission;

// What admission needs to know about one request: who (tenant, class, priority after any
// trusted override), its prompt-size estimate (the cost charged at admission), and the pool's
// current capacity and scheduler settings from the request's snapshot; with them the pool and
// the snapshot, where a grant takes its worker slot (null: the policies alone, in their tests).
internal readonly record struct AdmissionRequest(
    TenantModel Tenant,
    ClassModel Class,
    int Priority,
    long PromptTokens,
    SchedulerModel Scheduler,
    int Capacity,
    WorkerPool? Pool = null,
    GatewaySnapshot? Snapshot = null);
