using System.Reflection;

namespace AotProxy.Gateway;

// The binary's version, as /api/status and the cluster's member records report it.
internal static class GatewayVersion
{
    public static string Text { get; } =
        typeof(GatewayVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
}
