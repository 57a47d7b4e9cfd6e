namespace AotProxy.Identity;

// Why a request could not be identified. Every value becomes a 401 with its own message
// (OpenAiError.Unidentified), so an operator sees what to fix in the client or the IdP.
internal enum IdentifyFailure
{
    None,

    // No Authorization header (and no default class, no trusted x-tenant).
    MissingCredentials,

    // An API key that no tenant holds, or an Authorization header that is not "Bearer <key>".
    InvalidApiKey,

    // An issued key (the tenant store's) past its expires_at or a rotation's valid_until.
    ExpiredApiKey,

    // An issued key used outside its time-of-day window.
    OutsideKeyWindow,

    // JWT
    MalformedToken,       // not base64url, not JSON, claims of the wrong type, duplicate claims
    InvalidText,          // header or claims JSON that is not valid UTF-8, or escapes a lone surrogate
    TokenTooLarge,
    UnsupportedAlgorithm, // alg none, an alg the gateway does not implement, or one no configured key serves
    UnsupportedHeader,    // crit: extensions the gateway does not understand (RFC 7515 4.1.11)
    UnknownKey,           // kid names no key in the JWKS, or no kid and several keys fit
    BadSignature,
    MissingExpiry,
    Expired,
    NotYetValid,          // nbf or iat in the future, beyond the clock skew
    WrongIssuer,
    WrongAudience,
    MissingTenantClaim,
    UnknownTenant,
    UnknownClass,

    // Trusted headers (only ever from a trusted source)
    InvalidTenantHeader,  // x-tenant names no configured tenant
    InvalidTierHeader,    // x-customer-tier names no configured class
    InvalidPriorityHeader, // x-priority is not 0..9
}
