namespace AotProxy.Ledger;

// One failed request on the live console (status 400 and above, 499 included): what the client
// got, who asked for what, and where it went wrong. Code: the gateway's failure ("admission_refused",
// "upstream_connect"; "worker_status" when the worker itself answered an error, "unidentified" for
// a refused key). Tenant and model are "" when the request was not identified or named no model;
// worker "" when none was tried.
internal sealed record FailedRequest(DateTimeOffset At, int Status, string Code, string Tenant, string Model, string Worker, string Message);
