namespace AotProxy.Configuration;

// The values [cluster].store_down accepts: how a replica serves while Redis is unreachable.
internal static class StoreDownModes
{
    // Each replica enforces its 1/N share of the shared limits on its own; shown as degraded.
    public const string Local = "local";

    // Limited tenants get 503 with Retry-After until the store is back.
    public const string Closed = "closed";
}
