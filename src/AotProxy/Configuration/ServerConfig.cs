using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [server]
internal sealed record ServerConfig
{
    public string Listen { get; init; } = "127.0.0.1:8080";

    public string AdminListen { get; init; } = "127.0.0.1:9090";

    // "": the admin API is open (it listens on loopback by default).
    public string AdminTokenSha256 { get; init; } = "";

    // 4 MiB: a 128k-token prompt is ~512 KiB of JSON, so this leaves room for long chat histories.
    public long MaxRequestBytes { get; init; } = 4_194_304;

    // 30 s: long enough for most streams in flight at SIGTERM to finish, short enough for rollouts.
    public string ShutdownGrace { get; init; } = "30s";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
