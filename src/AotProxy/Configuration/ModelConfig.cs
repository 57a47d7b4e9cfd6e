using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[models]] entry: settings that belong to a model name as clients send it. With `targets`
// it is an alias (a public name for one or more served models); without, a served model's own
// settings. Each key is validated in Validation/ModelRules.
internal sealed record ModelConfig
{
    public string Name { get; init; } = "";

    // "": [forwarding] stream_idle_timeout. Long-thinking models stay silent for minutes.
    public string StreamIdleTimeout { get; init; } = "";

    // The served models an alias stands for; empty: the entry is a served model's own.
    public IReadOnlyList<string> Targets { get; init; } = [];

    // A cap on max_tokens for requests that name this entry; 0: none.
    public int MaxTokens { get; init; }

    // Tenants that may name this entry (beside their own `models` allowlist); empty: every tenant.
    public IReadOnlyList<string> Tenants { get; init; } = [];

    // A served model's declared capabilities ("chat", "tools", "vision", "embeddings"), for model "auto".
    public IReadOnlyList<string> Capabilities { get; init; } = [];

    // A served model's context length, over what its workers report as max_model_len; 0: theirs.
    public int ContextLength { get; init; }

    // The exact response cache (Caching/): deterministic requests naming this entry are answered from it.
    public bool ResponseCache { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
