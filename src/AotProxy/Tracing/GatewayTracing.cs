using System.Diagnostics;

namespace AotProxy.Tracing;

// The gateway's ActivitySource. With [telemetry] otlp_endpoint unset nothing listens to it, so no
// span is made and the stages' `request.Trace` is null: tracing costs them one check each.
internal static class GatewayTracing
{
    public const string SourceName = "AotProxy";

    public static readonly ActivitySource Source = new(SourceName, Gateway.GatewayVersion.Text);

    // Parents are always explicit (a client's, the request's, or none) and no span is left
    // current: one left on a connection's execution context by an earlier request, or picked up
    // by the control plane's HttpClient, would become a parent it is not.
    public static Activity? Start(string name, ActivityKind kind, ActivityContext parent)
    {
        var current = Activity.Current;
        Activity.Current = null;
        var span = Source.StartActivity(name, kind, parent);
        Activity.Current = current;
        return span;
    }
}
