namespace AotProxy.Admin.Contracts;

// GET /api/queues: the scheduler policy in force and, per model pool, its slots, queue levels,
// classes and tenants.
internal sealed record QueuesResponse(string Policy, ModelQueueReport[] Models);
