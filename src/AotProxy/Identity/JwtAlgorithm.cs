namespace AotProxy.Identity;

// The JWS algorithms the gateway verifies (RFC 7518 3.1). Anything else, "none" first, is refused.
internal enum JwtAlgorithm
{
    Hs256,
    Rs256,
    Es256,
}
