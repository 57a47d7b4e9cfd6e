using AotProxy.Caching;
using AotProxy.Http;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Ledger;

// The record stage: the request metric and one ledger row per identified request, whichever way
// it ended (DataPlaneHandler's finally), and the journal entry an admitted request leaves until
// then. The ledger is written off the hot path: a row is a struct handed to a bounded queue.
// Failures also go to the live console's ring (RecentErrors); a success pays one comparison for it.
internal sealed class RecordStage(LedgerWriter? ledger, RequestTelemetry telemetry, RecentErrors errors, TimeProvider time)
{
    // A request without a caller: counted, no row (there is no tenant to charge, and a flood of
    // bad keys must not fill the ledger).
    public void RecordUnidentified(int status)
    {
        telemetry.CountRequest(string.Empty, string.Empty, status);
        errors.Add(status, "unidentified", string.Empty, string.Empty, string.Empty, "no valid API key or token");
    }

    // At admission: the ledger journals the row this request leaves if the gateway dies before
    // Record (`interrupted`, charged its prompt estimate); Record settles the entry.
    public void Journal(ProxyRequest request)
    {
        if (ledger is null)
        {
            return;
        }

        var caller = request.Caller;
        var journal = ledger.NextJournal();
        var interrupted = RequestRecord.Interrupted(
            request.RequestId,
            time.GetUtcNow() - time.GetElapsedTime(request.Started),
            caller.Tenant.Name,
            caller.KeyId,
            caller.Class.Name,
            request.Model,
            request.AskedModel,
            request.Reservation.Prompt,
            request.QueueWait,
            request.Snapshot.Prices.For(request.Model));
        request.Journal = ledger.TryJournal(journal, interrupted) ? journal : 0;
    }

    public void Record(ProxyRequest request)
    {
        var caller = request.Caller;
        telemetry.CountRequest(request.Label, caller.Class.Name, request.Status);
        if (request.Status >= StatusCodes.Status400BadRequest)
        {
            errors.Add(request);
        }

        if (ledger is null)
        {
            return;
        }

        // The cost the budgets charged: the usage at the model's [[prices]]; none without usage.
        var usage = request.Usage ?? default;
        ledger.TryRecord(
            new RequestRecord(
                request.RequestId,
                request.Arrived,
                caller.Tenant.Name,
                caller.KeyId,
                caller.Class.Name,
                request.Model,
                request.AskedModel,
                request.Worker,
                usage,
                request.QueueWait.TotalMilliseconds,
                request.FirstByte?.TotalMilliseconds,
                time.GetElapsedTime(request.Started).TotalMilliseconds,
                request.Status,
                request.Outcome,
                CostNanos: request.Usage is null ? 0 : request.Snapshot.Prices.CostNanos(request.Model, usage),
                CacheHit: request.Cache == ResponseCacheOutcome.Hit),
            request.Journal);
    }
}
