namespace AotProxy.Admin.Contracts;

// GET /api/queues: the scheduler policy in force and, per model pool, its slots, queue levels,
// classes and tenants; then every configured time window and whether it is active.
internal sealed record QueuesResponse(string Policy, ModelQueueReport[] Models, TimeWindowReport[] TimeWindows);
