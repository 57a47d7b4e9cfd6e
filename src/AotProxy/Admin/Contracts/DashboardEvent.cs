using AotProxy.Ledger;

namespace AotProxy.Admin.Contracts;

// GET /api/events: one `event: state` message, the live console's whole state. Reason "connect"
// (the first message on a stream: History holds every sample kept), "tick" (once a second) or
// "change" (a breaker moved, a drain, a reload, a tenant or key changed; History holds the newest
// sample only, which the page appends). Seq grows by one per message built, across streams.
// Keys: every issued key (never the key itself; none without a tenant store). Usage is null
// without a ledger; EventStreams: the streams open now, this one included.
internal sealed record DashboardEvent(
    long Seq,
    string Reason,
    DateTimeOffset At,
    long TotalRequests,
    long ActiveRequests,
    int EventStreams,
    StatusResponse Status,
    WorkerReport[] Workers,
    WorkerHistoryReport[] History,
    BreakerReport[] Breakers,
    QueuesResponse Queues,
    FairShareReport[] FairShare,
    TenantReport[] Tenants,
    KeyReport[] Keys,
    DashboardUsage? Usage,
    FailedRequest[] Errors,
    ClusterResponse Cluster);
