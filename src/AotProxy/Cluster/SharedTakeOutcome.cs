namespace AotProxy.Cluster;

// What the shared RPM window said about one request (SharedRequestWindow.TryTakeAsync).
internal enum SharedTakeOutcome : byte
{
    Taken,
    Refused,
    StoreDown, // not connected, unreachable or timed out: the replica decides alone
}
