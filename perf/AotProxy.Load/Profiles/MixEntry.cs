namespace AotProxy.Load.Profiles;

// A validated [[mix]] entry. ApiKey is "" when the scenario's key (or --key) applies. With
// SharedPrefixes > 0 the user message is always unique (UniquePrompts is then true).
internal sealed record MixEntry(
    string Name,
    int Weight,
    bool Stream,
    int PromptChars,
    int MaxTokens,
    string ApiKey,
    string Tenant,
    bool UniquePrompts = false,
    int SharedPrefixes = 0,
    int PrefixChars = 0);
