using Tomlyn.Serialization;

namespace AotProxy.Load.Profiles;

// One [[mix]] entry: a kind of request, sent in proportion to its weight.
internal sealed record MixConfig
{
    public string Name { get; init; } = "";

    public int Weight { get; init; } = 1;

    public bool Stream { get; init; }

    // Length of the user message; about 4 characters per token for English text.
    public int PromptChars { get; init; } = 64;

    public int MaxTokens { get; init; } = 16;

    // "" = the scenario's key (or --key).
    public string ApiKey { get; init; } = "";

    // A label for the report (which tenant this traffic stands for); the gateway knows the
    // tenant by the key.
    public string Tenant { get; init; } = "";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
