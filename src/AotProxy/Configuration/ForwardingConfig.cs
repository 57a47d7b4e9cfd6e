using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [forwarding]
internal sealed record ForwardingConfig
{
    // 5 s: a worker on the same network accepts in milliseconds; longer means it is gone.
    public string ConnectTimeout { get; init; } = "5s";

    // 120 s: a long prefill on a loaded GPU can be silent for a minute before the first token.
    public string ActivityTimeout { get; init; } = "120s";

    // 60 s: the longest silence between a stream's events (and before its first one) a worker may
    // keep; a stream request waits this, not activity_timeout. [[models]] may set it per model.
    public string StreamIdleTimeout { get; init; } = "60s";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
