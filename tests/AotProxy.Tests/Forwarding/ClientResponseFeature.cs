using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Tests.Forwarding;

// The response as Kestrel shows it to the forwarder: started once the first byte went to the
// client, which decides whether a failure may still be retried or answered with a status line.
internal sealed class ClientResponseFeature(ClientResponseBody body) : HttpResponseFeature
{
    public override bool HasStarted => body.ToArray().Length > 0;
}
