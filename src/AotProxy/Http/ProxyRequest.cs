using System.Diagnostics;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Caching;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Gateway;
using AotProxy.Identity;
using AotProxy.Inspection;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Threading;
using AotProxy.Tracing;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// One proxied request as the stages see it (YARP's IReverseProxyFeature): what it started with,
// what each stage found or decided, in the order they run, and how it ended, which the record
// stage writes. Each value is computed once, by the stage that owns it, and read by the ones
// after. Pooled (1,024 idle, as the async method boxes are): the hot path allocates no object per
// request for it. Fields, not properties: the worker slot moves by ref (Router.Pick).
internal sealed class ProxyRequest
{
    private static readonly IdlePool<ProxyRequest> Idle = new(1024);

    // At the start (DataPlaneHandler): the whole request runs on this snapshot and the worker set
    // published with it (one GatewayView, read once).
    public HttpContext Context = null!;
    public GatewaySnapshot Snapshot = null!;
    public WorkerSet Workers = null!;
    public string RequestId = string.Empty;
    public EndpointKind Endpoint;
    public long Started;            // TimeProvider timestamp
    public DateTimeOffset Arrived;  // UTC, the ledger row's time
    public Activity? Trace;         // the SERVER span (Tracing/RequestTrace); null with tracing off

    // Identity/IdentityStage: who is asking (a JWT class claim or a trusted x-customer-tier may
    // have overridden the tenant's class).
    public Caller Caller;

    // Inspection/InspectionStage: the body, what it asks for, and the pool of its model.
    public RequestBody? Body;
    public bool BodyPrepared;       // Forwarding rewrote Body for the worker (once, before the first attempt)
    public InspectedRequest Inspected;
    public InspectionError InspectionError;
    public ulong[] PromptChunks = []; // rented for the body's size (Inspection.PromptChunks.Rent); Inspected.PromptChunks of them are this request's
    public string? InspectionParam;
    public WorkerPool? Pool;
    public bool ModelRewritten;     // an alias named: the body's model becomes Pool.Model upstream
    public AutoDemand AutoDemand;   // model "auto" found no model: what the request needed
    public bool ModelCapped;        // a [[models]] max_tokens cap lowered Inspected.MaxTokens: the worker gets it too

    // Caching/ResponseCacheStage: what the cache did, the key it looked up, and a miss's recording.
    public ResponseCacheOutcome Cache;
    public UInt128 CacheKey;
    public ResponseRecorder? Recorder;

    // Limits/LimitStage: the one reservation, and the lease the finally settles.
    public TokenReservation Reservation;
    public LimitResult Limit;

    // Admission/AdmissionStage: the class after [[time_windows]], the priority admitted with, and
    // what admission gave: a slot (the lease the finally releases) and the worker slot behind it,
    // which the forwarding stage moves and gives back.
    public ClassModel? Class;
    public int Priority;
    public AdmissionDecision Decision;
    public int RetryAfterSeconds;   // admission's refusal, or a pacing timeout's
    public ShedReason? Shed;        // admission's refusal by protection: why
    public int QueuePosition;       // admission's refusal: the place it had (0: never queued)
    public double GrantRate;        // and the model's grants/s it was computed from
    public readonly QueueUpdates QueueUpdates = new(); // used when a queued stream asked (x-gateway-queue-updates)
    public bool Admitted;
    public AdmissionLease Lease;
    public readonly StreamedCharge Streamed = new(); // the lease's output charged chunk by chunk as it streams
    public WorkerSlot Slot;
    public readonly PreemptionTicket Preemption = new(); // a preemptible class's: before its first byte, its slot may go to a more important waiter
    public readonly FirstTokenWatch FirstToken = new(); // a stream's place among its class's requests awaiting a first token (protection)

    // Forwarding/ForwardingStage: the last attempt's worker and result.
    public WorkerState? Upstream;
    public readonly PrefillLease Prefill = new(); // the current attempt's token load on its worker
    public readonly ContentMeter Meter;   // the attempt's content chunks: budget debits (settled from here) and Streamed's charges
    public ForwardResult Forward;
    public TimeSpan PacingMaxWait;  // the paced worker's max_wait, when its pacing timed out
    public TimeSpan UpstreamTime;   // the attempts' time on workers so far, each from its send to its end
    public TimeSpan Overhead;       // Http/TimingHeaders: the gateway's own time up to the response head

    // How the request ended (Ledger/RecordStage writes it): filled stage by stage. Status stays
    // 500 when an exception ends the request, as Kestrel then answers.
    public ProxyFailure Failure;
    public int Status;
    public string Outcome = LedgerOutcome.Rejected;
    public string Model = string.Empty;   // the served model (an alias's target); as the client asked when no pool was found
    public string AskedModel = string.Empty; // as the client asked
    public string Label = string.Empty;   // the metrics' model label: a served model or ""
    public string Worker = string.Empty;
    public Usage? Usage;
    public TimeSpan QueueWait;
    public TimeSpan? FirstByte;
    public long Journal;                  // the ledger's journal entry for an admitted request; 0: none

    private ProxyRequest() => Meter = new(Streamed);

    public static ProxyRequest Rent(HttpContext context, string requestId, EndpointKind endpoint, GatewayView view, TimeProvider time)
    {
        var request = Idle.TryRent() ?? new ProxyRequest();
        request.Context = context;
        request.RequestId = requestId;
        request.Endpoint = endpoint;
        request.Snapshot = view.Config;
        request.Workers = view.Workers;
        request.Started = time.GetTimestamp();
        request.Arrived = time.GetUtcNow();
        request.Status = StatusCodes.Status500InternalServerError;
        request.Trace = RequestTrace.Start(context, endpoint, view.Config.Telemetry);
        return request;
    }

    // After the request has been recorded: the body goes back to its pool (unless it went at the
    // first byte), and every reference is dropped so that an idle request keeps nothing alive.
    public static void Return(ProxyRequest request)
    {
        request.ReleaseBody();
        request.Reset();
        Idle.Return(request);
    }

    // Forwarding/Forwarder relayed the attempt's first byte to the client: nothing is sent again (no
    // retry or preemption follows it), so the body goes back now, not when a long stream ends
    // (perf/RESULTS.md, issue 22); the worker's prefill is over; protection no longer counts the
    // request as awaiting its first token.
    public void OnFirstByte(TimeSpan firstByte)
    {
        ReleaseBody();
        Prefill.OnFirstByte(firstByte);
        FirstToken.End();
    }

    // The body is the request's (Inspection read it into Body): given back here only, once, at the
    // first byte relayed or at Return, whichever comes first.
    private void ReleaseBody()
    {
        Body?.Dispose();
        Body = null;
    }

    private void Reset()
    {
        Context = null!;
        Snapshot = null!;
        Workers = null!;
        RequestId = string.Empty;
        Endpoint = default;
        Started = 0;
        Arrived = default;
        Trace = null;
        Caller = default;
        Body = null;
        BodyPrepared = false;
        Inspected = default;
        Inspection.PromptChunks.Return(PromptChunks);
        PromptChunks = [];
        InspectionError = default;
        InspectionParam = null;
        Pool = null;
        ModelRewritten = false;
        ModelCapped = false;
        AutoDemand = default;
        Cache = ResponseCacheOutcome.None;
        CacheKey = default;
        Recorder?.Dispose();
        Recorder = null;
        Reservation = default;
        Limit = default;
        Class = null;
        Priority = 0;
        Decision = default;
        RetryAfterSeconds = 0;
        Shed = null;
        QueuePosition = 0;
        GrantRate = 0;
        QueueUpdates.Reset();
        Admitted = false;
        Lease = default;
        Streamed.End();
        Slot = default;
        Preemption.Reset();
        FirstToken.End(); // never leaks: an awaited first token that would read older and older
        Upstream = null;
        Prefill.End(); // never leaks: an attempt the stage could not end (an exception) ends here
        Meter.Start(default);
        Forward = default;
        PacingMaxWait = default;
        UpstreamTime = default;
        Overhead = default;
        Failure = ProxyFailure.None;
        Status = 0;
        Outcome = LedgerOutcome.Rejected;
        Model = string.Empty;
        AskedModel = string.Empty;
        Label = string.Empty;
        Worker = string.Empty;
        Usage = null;
        QueueWait = default;
        FirstByte = null;
        Journal = 0;
    }
}
