namespace AotProxy.Simulator;

// What the simulator needs from an OpenAI request body; everything else in the body is skipped.
internal sealed class ParsedRequest
{
    public RequestKind Kind { get; init; }

    public string? Model { get; set; }

    // The LoRA adapter it names: an index into SimulatorOptions.LoraModules; -1 for the base model.
    public int Adapter { get; set; } = -1;

    // Estimated as ceil(bytes / 4) of the rendered prompt, see RequestParser.
    public int PromptTokens { get; set; }

    // Chained hashes of the prompt's full KV blocks (BlockSize * 4 bytes each): the prefix-cache keys.
    public ulong[] BlockHashes { get; set; } = [];

    // Hash of the whole rendered prompt: seeds the generated text.
    public ulong PromptHash { get; set; }

    // vLLM's `cache_salt`: mixed into the first block's hash, so only requests with the same salt
    // share cached blocks. Null: none.
    public string? CacheSalt { get; set; }

    public int? MaxTokens { get; set; }

    public int? MaxCompletionTokens { get; set; }

    public bool Stream { get; set; }

    public bool IncludeUsage { get; set; }

    // vLLM's extension: never emit end-of-sequence, so the output is exactly max_tokens long.
    public bool IgnoreEos { get; set; }

    public long? Seed { get; set; }

    // vLLM's extension for --scheduling-policy priority: lower values are served first; 0 when absent.
    public int Priority { get; set; }

    public bool HasPrompt { get; set; }

    // Embeddings, pooling, classify: one hash per input item (the vector's seed); rerank and score:
    // one per (query, document) pair (the score's seed).
    public List<ulong> InputHashes { get; } = [];

    // Rerank: the query and the documents (results quote them), and top_n (0: all).
    public string? Query { get; set; }

    public List<string> Documents { get; } = [];

    public int TopN { get; set; }

    // Score: text_1 and text_2, each a string or a list of them.
    public List<string> Texts1 { get; } = [];

    public List<string> Texts2 { get; } = [];

    // Detokenize: the token ids.
    public List<int> TokenIds { get; } = [];

    // vLLM reads max_completion_tokens first; max_tokens is the deprecated spelling.
    public int ResolveMaxTokens(int defaultMaxTokens) => MaxCompletionTokens ?? MaxTokens ?? defaultMaxTokens;

    public ulong GenerationSeed(int maxTokens)
    {
        var seed = Fnv1a.Hash((ulong)maxTokens, PromptHash);
        return Seed is { } user ? Fnv1a.Hash((ulong)user, seed) : seed;
    }
}
