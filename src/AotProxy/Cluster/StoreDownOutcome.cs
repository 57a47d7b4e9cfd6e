namespace AotProxy.Cluster;

// What [cluster] store_down decided for a request the store could not decide (StoreDownPolicy).
internal enum StoreDownOutcome : byte
{
    Admitted, // store_down = "local", within this replica's share of the limit
    Refused,  // store_down = "local", this replica's share is used up: 429, as the limit itself
    Closed,   // store_down = "closed": 503 with Retry-After until the store is back
}
