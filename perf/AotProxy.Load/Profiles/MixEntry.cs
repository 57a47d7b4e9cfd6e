namespace AotProxy.Load.Profiles;

// A validated [[mix]] entry. ApiKey is "" when the scenario's key (or --key) applies. With
// SharedPrefixes > 0 the user message is always unique (UniquePrompts is then true). The entry
// sends from Start to Stop after the schedule's start (null Stop: to the end). Models null: the
// scenario's model. Conversations > 0: multi-turn chats of TurnChars per user turn, Turns turns
// each (PromptChars is then unused).
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
    int PrefixChars = 0,
    TimeSpan Start = default,
    TimeSpan? Stop = null,
    IReadOnlyList<string>? Models = null,
    int Conversations = 0,
    int TurnChars = 0,
    int Turns = 0);
