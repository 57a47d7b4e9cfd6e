using AotProxy.Hosting.Parking;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Abstractions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Hosting;

// The whole "application" Kestrel sees: one delegate. No hosting layer, no middleware, no
// DiagnosticListener/Activity per request. The HttpContext is reused per connection through
// IHostContextContainer, as ASP.NET Core's own HostingApplication does, so a keep-alive
// connection allocates its context once.
// With parking, it tells the connection where each request ends (ParkableConnection).
internal sealed class DelegateApplication(RequestDelegate handler, bool parking = false) : IHttpApplication<DefaultHttpContext>
{
    public DefaultHttpContext CreateContext(IFeatureCollection contextFeatures)
    {
        if (contextFeatures is IHostContextContainer<DefaultHttpContext> container)
        {
            if (container.HostContext is { } reused)
            {
                reused.Initialize(contextFeatures);
                return reused;
            }

            var created = new DefaultHttpContext(contextFeatures);
            container.HostContext = created;
            return created;
        }

        return new DefaultHttpContext(contextFeatures);
    }

    public Task ProcessRequestAsync(DefaultHttpContext context) => handler(context);

    public void DisposeContext(DefaultHttpContext context, Exception? exception)
    {
        if (parking)
        {
            ParkableConnection.MarkRequestEnded(context.Features);
        }

        context.Uninitialize();
    }
}
