using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [server]
internal sealed record ServerConfig
{
    public string Listen { get; init; } = "127.0.0.1:8080";

    public string AdminListen { get; init; } = "127.0.0.1:9090";

    // "": off. Set it to serve the same OpenAI API over HTTP/2 without TLS (h2c, prior knowledge)
    // on a port of its own: Kestrel cannot offer h2c on a cleartext port that also speaks HTTP/1.1.
    public string H2cListen { get; init; } = "";

    // "": the admin API is open (it listens on loopback by default).
    public string AdminTokenSha256 { get; init; } = "";

    // 4 MiB: a 128k-token prompt is ~512 KiB of JSON, so this leaves room for long chat histories.
    public long MaxRequestBytes { get; init; } = 4_194_304;

    // 30 s: long enough for most streams in flight at SIGTERM to finish, short enough for rollouts.
    public string ShutdownGrace { get; init; } = "30s";

    // Open client connections on the data plane (listen and h2c_listen each), idle ones included;
    // past it a new connection is closed at once. 10,000: far above what one gateway serves in
    // flight, far below the 20,000+ file descriptors it would need beside its upstream
    // connections. 0: no limit.
    public int MaxConnections { get; init; } = 10_000;

    // Request line and headers together, per request (Kestrel's MaxRequestHeadersTotalSize; also
    // each HTTP/2 header field): larger gets 431. 32 KiB is Kestrel's and nginx's default and holds
    // a JWT of several KiB; every connection may hold this much while its headers arrive.
    public int MaxHeaderBytes { get; init; } = 32 * 1024;

    // "epoll" (Linux: recv only after edge-triggered readiness, issue 22; the default there: less
    // memory per connection and fewer syscalls per request than .NET's sockets, perf/RESULTS.md) or
    // "sockets" (.NET's socket engine; the default elsewhere) for the data plane's listeners and the
    // plain-HTTP connections to the workers; read at startup.
    public string Transport { get; init; } = OperatingSystem.IsLinux() ? "epoll" : "sockets";
    // An HTTP/1 keep-alive connection idle this long between requests is parked: Kestrel's
    // per-connection HTTP state (~8 KB) is dropped and the socket waits, with no buffer, for the
    // next request, which gets fresh state. Kestrel's keep-alive timeout (130 s) still closes it.
    // 1s: a client's next request in a burst finds its connection unparked. "0": never park.
    public string ParkIdleAfter { get; init; } = "1s";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
