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

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
