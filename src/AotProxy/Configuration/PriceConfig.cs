using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[prices]] entry: USD per million tokens of one model ("*": every model without its own entry).
internal sealed record PriceConfig
{
    public string Model { get; init; } = "";

    public double InputPerMillion { get; init; }

    public double OutputPerMillion { get; init; }

    // Cached prompt tokens (prompt_tokens_details.cached_tokens); absent: the input price.
    public double? CachedInputPerMillion { get; init; }

    // USD per second of audio (the audio endpoints' usage as vLLM reports it); 0: free.
    public double AudioPerSecond { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
