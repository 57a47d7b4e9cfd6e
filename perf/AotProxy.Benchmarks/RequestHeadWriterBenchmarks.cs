using System.Net;
using AotProxy.Upstream;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Benchmarks;

// The request head a worker receives (RequestHeadWriter.Write, once per attempt), for the headers
// the OpenAI Python SDK sends: without a peer address (no X-Forwarded-For, as before issue 14),
// with the peer appended (every TCP client), from a trusted proxy whose X-Forwarded-For is kept
// and appended to, and with a non-ASCII value (written as UTF-8).
[MemoryDiagnoser]
public class RequestHeadWriterBenchmarks
{
    private static readonly IPAddress Peer = IPAddress.Parse("10.1.2.3");

    private readonly byte[] _buffer = new byte[4096];
    private readonly UpstreamEndpoint _endpoint = new(new Uri("http://10.0.0.5:8000/"));
    private HeaderDictionary _sdk = null!;
    private HeaderDictionary _proxied = null!;
    private HeaderDictionary _nonAscii = null!;

    [GlobalSetup]
    public void Setup()
    {
        _sdk = Sdk();
        _proxied = Sdk();
        _proxied["X-Forwarded-For"] = "203.0.113.9, 198.51.100.7";
        _proxied["X-Forwarded-Proto"] = "https";
        _nonAscii = Sdk();
        _nonAscii["X-Title"] = "Résumé helper – café €";
    }

    [Benchmark(Baseline = true)]
    public int NoPeer() => Write(_sdk, peer: null, trusted: false);

    [Benchmark]
    public int PeerAppended() => Write(_sdk, Peer, trusted: false);

    [Benchmark]
    public int TrustedProxyListAppendedTo() => Write(_proxied, Peer, trusted: true);

    [Benchmark]
    public int NonAsciiValue() => Write(_nonAscii, Peer, trusted: false);

    private int Write(HeaderDictionary headers, IPAddress? peer, bool trusted) =>
        RequestHeadWriter.Write(_buffer, "POST", _endpoint, "/v1/chat/completions", string.Empty, headers, 187, "3ea34fb23e5e3d370000000000000001", "Bearer sk-worker", peer, trusted);

    private static HeaderDictionary Sdk() => new()
    {
        ["Host"] = "gateway:8080",
        ["Accept-Encoding"] = "gzip, deflate",
        ["Connection"] = "keep-alive",
        ["Accept"] = "application/json",
        ["Content-Type"] = "application/json",
        ["User-Agent"] = "OpenAI/Python 1.54.4",
        ["X-Stainless-Lang"] = "python",
        ["X-Stainless-Package-Version"] = "1.54.4",
        ["X-Stainless-OS"] = "Linux",
        ["X-Stainless-Arch"] = "x64",
        ["X-Stainless-Runtime"] = "CPython",
        ["X-Stainless-Runtime-Version"] = "3.12.7",
        ["Authorization"] = "Bearer sk-test-acme",
        ["X-Stainless-Async"] = "false",
        ["X-Stainless-Retry-Count"] = "0",
        ["Content-Length"] = "187",
    };
}
