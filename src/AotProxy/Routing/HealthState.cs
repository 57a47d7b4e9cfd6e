namespace AotProxy.Routing;

internal enum HealthState : byte
{
    Unknown,   // not checked yet: routable, so a fresh gateway serves before its first check
    Healthy,
    Unhealthy,
}
