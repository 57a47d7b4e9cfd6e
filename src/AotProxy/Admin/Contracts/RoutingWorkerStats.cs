namespace AotProxy.Admin.Contracts;

internal sealed record RoutingWorkerStats(string Name, long Decisions, Dictionary<string, long> ByStrategy);
