using System.Text;

namespace AotProxy.Upstream;

// A worker's base URL, pre-encoded for the request head: connect target, Host header bytes and
// the path prefix every forwarded path is appended to.
internal sealed class UpstreamEndpoint
{
    public UpstreamEndpoint(Uri baseUrl)
    {
        Host = baseUrl.IdnHost;
        Port = baseUrl.Port;
        UseTls = baseUrl.Scheme == Uri.UriSchemeHttps;
        HostHeader = Encoding.ASCII.GetBytes(baseUrl.IsDefaultPort ? baseUrl.IdnHost : $"{baseUrl.IdnHost}:{baseUrl.Port}");
        if (baseUrl.HostNameType == UriHostNameType.IPv6)
        {
            HostHeader = Encoding.ASCII.GetBytes(baseUrl.IsDefaultPort ? $"[{Host}]" : $"[{Host}]:{baseUrl.Port}");
        }

        PathPrefix = Encoding.ASCII.GetBytes(baseUrl.AbsolutePath.TrimEnd('/'));
    }

    public string Host { get; }

    public int Port { get; }

    public bool UseTls { get; }

    public byte[] HostHeader { get; }

    // "" for "http://gpu-0:8000/", "/vllm" for "http://gpu-0:8000/vllm/": the request path follows.
    public byte[] PathPrefix { get; }
}
