namespace AotProxy.Routing;

// Sorts what HttpClient throws at a scrape or a health probe into the failure kinds both report.
internal static class ProbeFailure
{
    // What HttpClient throws for a failed request or body read; anything else (a relative URL
    // without a BaseAddress, a disposed client) is the caller's bug and is not caught.
    public static bool IsTransport(Exception ex) => ex is OperationCanceledException or HttpRequestException or IOException;

    // Refused, unreachable, DNS and TLS fail before a request is sent; everything else after it.
    public static bool IsConnect(Exception ex) =>
        ex is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError };
}
