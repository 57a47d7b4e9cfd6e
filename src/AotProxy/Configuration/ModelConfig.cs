using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[models]] entry: settings that belong to a model wherever it is served. Open for more keys
// (issue 21's aliases); each new one is validated in Validation/ModelRules.
internal sealed record ModelConfig
{
    public string Name { get; init; } = "";

    // "": [forwarding] stream_idle_timeout. Long-thinking models stay silent for minutes.
    public string StreamIdleTimeout { get; init; } = "";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
