namespace AotProxy.Cluster;

// What the tenant's fleet-wide limits said about one request (SharedTenantLimits.TryAdmitAsync).
internal enum SharedTakeOutcome : byte
{
    Taken,
    Refused,
    StoreDown, // not connected, unreachable or timed out: the replica decides alone
}
