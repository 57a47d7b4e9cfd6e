using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [forwarding]
internal sealed record ForwardingConfig
{
    // 5 s: a worker on the same network accepts in milliseconds; longer means it is gone.
    public string ConnectTimeout { get; init; } = "5s";

    // 120 s: a long prefill on a loaded GPU can be silent for a minute before the first token.
    public string ActivityTimeout { get; init; } = "120s";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
