namespace AotProxy.Http;

// Status codes the gateway uses that ASP.NET Core's StatusCodes does not name.
internal static class GatewayStatusCodes
{
    // nginx's: the client closed the connection before the answer (while it sent its body, waited
    // in a queue or for pacing, or mid-stream). Nothing is sent; the metric and the ledger say it.
    public const int Status499ClientClosedRequest = 499;
}
