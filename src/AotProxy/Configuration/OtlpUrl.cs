using System.Diagnostics.CodeAnalysis;

namespace AotProxy.Configuration;

// An OTLP/HTTP receiver's base URL, as [telemetry] otlp_endpoint and the simulator's
// --otlp-traces-endpoint take it: http or https, no query or fragment (the signal's path follows).
internal static class OtlpUrl
{
    public static bool TryParse(string text, [NotNullWhen(true)] out Uri? url)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out url) && url.Scheme is "http" or "https" && url.Query.Length == 0 && url.Fragment.Length == 0)
        {
            return true;
        }

        url = null;
        return false;
    }

    // {base}/v1/traces, the OTLP/HTTP path of traces.
    public static Uri Traces(Uri baseUrl) => new(baseUrl.AbsoluteUri.TrimEnd('/') + "/v1/traces");
}
