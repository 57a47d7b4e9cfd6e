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

    // Every request's user message starts with its own tag, so that no two prompts share a KV
    // block (without it every request of the entry sends the same body, a 100% prefix-cache hit).
    public bool UniquePrompts { get; init; }

    // > 0: each request starts with a system message, one of this many fixed long texts picked at
    // random, followed by a unique user message: the shared-prefix traffic cache-aware routing is for.
    public int SharedPrefixes { get; init; }

    // Length of each shared system message; read only with shared_prefixes.
    public int PrefixChars { get; init; }

    public int MaxTokens { get; init; } = 16;

    // Non-empty: each request's model is drawn from this list (uniform over its items, the same
    // sequence in every run; repeat a name to weight it), instead of [scenario] model. LoRA
    // adapters are served as models, so this is how traffic picks adapters.
    public IReadOnlyList<string> Models { get; init; } = [];

    // > 0: multi-turn chats. This many conversations take the entry's requests in turn; each turn
    // sends the conversation so far (its earlier user messages and the answers streamed back)
    // plus a new user message of turn_chars, with `x-session-id: <conversation id>`. After
    // `turns` turns a conversation starts over as a new one.
    public int Conversations { get; init; }

    public int TurnChars { get; init; }

    public int Turns { get; init; }

    // "" = the scenario's key (or --key).
    public string ApiKey { get; init; } = "";

    // A label for the report (which tenant this traffic stands for); the gateway knows the
    // tenant by the key.
    public string Tenant { get; init; } = "";

    // The part of the run the entry sends in, from the schedule's start ("" = the whole run). Out
    // of it the entry's turns are skipped, so the other entries keep their own rates: a tenant
    // that stops, or joins late, in a fairness test.
    public string Start { get; init; } = "";

    public string Stop { get; init; } = "";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
