using AotProxy.Configuration;

namespace AotProxy.Identity;

// Who is asking, resolved once per request: the routing metadata every later stage reads.
// Weight is Tenant.Weight within Class.Weight; the admission bucket is the scheduler's to pick.
// A struct: identification must not allocate on the hot path.
internal readonly record struct Caller(
    TenantModel Tenant,
    ClassModel Class,       // the tenant's class, unless a JWT class claim or a trusted x-customer-tier overrides it
    int Priority,           // 0..9; Class.Priority unless a trusted x-priority overrides it
    string Environment,     // the tenant's `environment` ("" when unset)
    IdentitySource Source,
    bool PriorityFromHeader = false, // a trusted x-priority set Priority: a time window must not replace it
    string KeyId = "");              // the API key's ApiKeyIndex.KeyIdOf; "" for a JWT, trusted headers or anonymous
