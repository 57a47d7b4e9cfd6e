using AotProxy.Ledger;

namespace AotProxy.Admin.Contracts;

// GET /api/usage and `aotproxy usage --json`: the ledger summed per tenant, model or UTC day,
// over arrivals in [since, until) (null: open).
internal sealed record UsageResponse(string By, DateTimeOffset? Since, DateTimeOffset? Until, UsageRow[] Rows);
