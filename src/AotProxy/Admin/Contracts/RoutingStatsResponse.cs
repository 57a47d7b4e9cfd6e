namespace AotProxy.Admin.Contracts;

// GET /api/routing/stats: the strategy in force and how many requests each worker got from each
// strategy since it was added (counts survive reloads and strategy changes).
internal sealed record RoutingStatsResponse(string Strategy, RoutingWorkerStats[] Workers);
