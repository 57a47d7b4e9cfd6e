using AotProxy.Configuration;

namespace AotProxy.Admission;

// What admission needs to know about one request: who (tenant, class, priority after any
// trusted override), its prompt-size estimate (the cost charged at admission), its max_tokens
// (else limits.default_max_tokens; what [scheduler] lookahead charges a share of), and where a
// queued stream reports its progress (x-gateway-queue-updates; null: it did not ask). The pool's
// capacity, workers and scheduler settings are the model's own, which AdmissionController keeps
// as the last applied config and the workers' state make them.
internal readonly record struct AdmissionRequest(
    TenantModel Tenant,
    ClassModel Class,
    int Priority,
    long PromptTokens,
    long MaxTokens = 0,
    QueueUpdates? Updates = null);
