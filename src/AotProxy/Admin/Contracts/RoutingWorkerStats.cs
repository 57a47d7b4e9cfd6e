namespace AotProxy.Admin.Contracts;

// PushBacks: its 503/429 answers ("full", retried elsewhere); Warming: joined or recovered and not
// yet through the gateway's warm-up request, so it takes no traffic.
internal sealed record RoutingWorkerStats(string Name, long Decisions, Dictionary<string, long> ByStrategy, long PushBacks = 0, bool Warming = false);
