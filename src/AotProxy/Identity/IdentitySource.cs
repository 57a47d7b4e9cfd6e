namespace AotProxy.Identity;

// How a caller was identified: for logs, metrics and the ledger, and for tests that must tell
// "served through the default class" from "served by key".
internal enum IdentitySource
{
    ApiKey,
    Jwt,
    TrustedHeaders, // x-tenant from a trusted source, without a bearer token
    Anonymous,      // no credentials; auth.default_class
}
