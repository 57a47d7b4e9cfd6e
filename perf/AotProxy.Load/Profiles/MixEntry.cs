namespace AotProxy.Load.Profiles;

// A validated [[mix]] entry. ApiKey is "" when the scenario's key (or --key) applies.
internal sealed record MixEntry(
    string Name,
    int Weight,
    bool Stream,
    int PromptChars,
    int MaxTokens,
    string ApiKey,
    string Tenant);
