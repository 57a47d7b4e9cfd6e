using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;

namespace AotProxy.Accounting;

// The counts of one `usage` object, collected token by token as a reader walks it: the two
// top-level counts and, when present, `prompt_tokens_details.cached_tokens` and
// `completion_tokens_details.reasoning_tokens` (null or absent: 0). The Responses API names them
// input_tokens, output_tokens, input_tokens_details and output_tokens_details; Anthropic's Messages
// API input_tokens and output_tokens, with cache reads and writes counted apart from input_tokens
// (cache_read_input_tokens, cache_creation_input_tokens), which are added back to the prompt here.
// vLLM's transcriptions report `seconds` of audio instead of tokens (AudioUsage).
// The whole-object reader (SSE events) and the incremental scanner (JSON bodies) both feed it, so
// both read the same fields.
internal struct UsageFields
{
    private const byte None = 0, Prompt = 1, Completion = 2, PromptDetails = 3, CompletionDetails = 4, Cached = 5, Reasoning = 6, CacheRead = 7, CacheCreation = 8, Total = 9, Seconds = 10;

    private byte _field;   // the property whose value comes next
    private byte _section; // None: the usage object itself; PromptDetails / CompletionDetails: inside one
    private long _prompt;
    private long _completion;
    private long _cached;
    private long _reasoning;
    private long _cacheRead;     // Anthropic's, outside input_tokens
    private long _cacheCreation; // Anthropic's, outside input_tokens
    private long _total;
    private long _seconds;       // vLLM's transcription usage: {"type":"duration","seconds":N}
    private bool _sawPrompt;
    private bool _sawTotal;

    // Without prompt_tokens (older vLLM's rerank reports `{"total_tokens":N}` alone, as Jina's API
    // does), the prompt is the total less the completion: a pooling model's input is all it used.
    public readonly Usage Usage => new((_sawPrompt || !_sawTotal ? _prompt : Math.Max(0, _total - _completion)) + _cacheRead + _cacheCreation, _completion, _cached + _cacheRead, _reasoning, AudioSeconds: _seconds);

    // `depth`: the token's depth below the usage object's StartObject (1: the usage object's own
    // properties and the details objects' Start/EndObject; 2: the details' properties). Tokens
    // deeper down are ignored.
    public void Take(ref Utf8JsonReader reader, int depth)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.PropertyName when depth == 1:
                _field = reader.ValueTextEquals("prompt_tokens"u8) || reader.ValueTextEquals("input_tokens"u8) ? Prompt
                    : reader.ValueTextEquals("completion_tokens"u8) || reader.ValueTextEquals("output_tokens"u8) ? Completion
                    : reader.ValueTextEquals("prompt_tokens_details"u8) || reader.ValueTextEquals("input_tokens_details"u8) ? PromptDetails
                    : reader.ValueTextEquals("completion_tokens_details"u8) || reader.ValueTextEquals("output_tokens_details"u8) ? CompletionDetails
                    : reader.ValueTextEquals("cache_read_input_tokens"u8) ? CacheRead
                    : reader.ValueTextEquals("cache_creation_input_tokens"u8) ? CacheCreation
                    : reader.ValueTextEquals("total_tokens"u8) ? Total
                    : reader.ValueTextEquals("seconds"u8) ? Seconds
                    : None;
                break;
            case JsonTokenType.PropertyName when depth == 2:
                _field = _section == PromptDetails && reader.ValueTextEquals("cached_tokens"u8) ? Cached
                    : _section == CompletionDetails && reader.ValueTextEquals("reasoning_tokens"u8) ? Reasoning
                    : None;
                break;
            case JsonTokenType.StartObject or JsonTokenType.StartArray:
                // A count is a number right after its name: `"prompt_tokens":[5]` is not one.
                _section = depth == 1 ? _field : _section;
                _field = None;
                break;
            case JsonTokenType.EndObject when depth == 1:
                _section = None;
                break;
            case JsonTokenType.Number when _field is Prompt or Completion or Cached or Reasoning or CacheRead or CacheCreation or Total or Seconds && TryReadCount(ref reader, out var value):
                Set(value);
                break;
        }
    }

    // Utf8JsonReader.TryGetInt64 copies a number split across segments into a new array (32 B
    // per count that straddles a read, see perf/RESULTS.md); a count has at most 19 digits, so
    // a copy on the stack does.
    private static bool TryReadCount(ref Utf8JsonReader reader, out long value)
    {
        value = 0;
        if (!reader.HasValueSequence)
        {
            return reader.TryGetInt64(out value) && value >= 0;
        }

        var sequence = reader.ValueSequence;
        if (sequence.Length > 20)
        {
            return false;
        }

        Span<byte> digits = stackalloc byte[20];
        digits = digits[..(int)sequence.Length];
        sequence.CopyTo(digits);
        return Utf8Parser.TryParse(digits, out value, out var used) && used == digits.Length && value >= 0;
    }

    private void Set(long value)
    {
        _sawPrompt |= _field == Prompt;
        _sawTotal |= _field == Total;
        _prompt = _field == Prompt ? value : _prompt;
        _total = _field == Total ? value : _total;
        _completion = _field == Completion ? value : _completion;
        _cached = _field == Cached ? value : _cached;
        _reasoning = _field == Reasoning ? value : _reasoning;
        _cacheRead = _field == CacheRead ? value : _cacheRead;
        _cacheCreation = _field == CacheCreation ? value : _cacheCreation;
        _seconds = _field == Seconds ? value : _seconds;
        _field = None;
    }
}
