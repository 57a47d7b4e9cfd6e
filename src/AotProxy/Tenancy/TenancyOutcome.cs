namespace AotProxy.Tenancy;

// How an admin change of tenants or keys ended; the admin API turns each into its status
// (200/201, 400, 404, 409, 503).
internal enum TenancyOutcome
{
    Done,
    Invalid,     // the input breaks a [[tenants]] rule, or a time in the past
    NotFound,    // no such tenant or key
    Conflict,    // the name is taken (by the file or the store), or the tenant is the file's
    Unavailable, // the store did not answer (nothing changed)
}
