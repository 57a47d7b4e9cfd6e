namespace AotProxy.Http;

// Why a request the data plane identified ends without a worker's answer: a value each stage sets
// on its ProxyRequest, which Http/ProxyErrors turns into the status and OpenAI error the client gets.
internal enum ProxyFailure : byte
{
    None,
    ClientClosedRequest, // 499, nothing written: the client went away (body, queue, pacing, a retry's backoff, the upstream)
    BodyTooLarge,        // 413: over server.max_request_bytes
    InvalidBody,         // 400: ProxyRequest.InspectionError says what
    ModelNotAllowed,     // 403: outside the tenant's allowlist
    ModelNotFound,       // 404: no worker ever served it, and every worker's models are known
    ModelUnavailable,    // 503: a model some worker served since the start has no worker now
    ModelsUnreported,    // 503: no worker serves it, and some worker has not reported its models yet
    NoModelFits,         // 400: model "auto", and no model the tenant may use can serve the request (ProxyRequest.AutoDemand)
    RateLimited,         // 429 rate_limit_exceeded: rpm, tpm or max_in_flight (ProxyRequest.Limit)
    QuotaExceeded,       // 429 insufficient_quota: a budget (ProxyRequest.Limit)
    LimitStoreDown,      // 503: a limited tenant while the cluster store is down, with [cluster] store_down = "closed"
    AdmissionRefused,    // 503: queue full, max_queue_wait, the capacity guard, no capacity (ProxyRequest.Decision)
    NoWorker,            // 503: admitted, but no worker could take it when it came to routing
    PacingTimeout,       // 503: its worker's upstream pacing gave it no turn within max_wait
    Upstream,            // 502/504: the worker failed before any byte reached the client (ProxyRequest.Forward)
}
