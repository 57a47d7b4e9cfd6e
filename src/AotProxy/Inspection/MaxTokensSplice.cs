using System.Buffers.Text;

namespace AotProxy.Inspection;

// Where a budget's cap (budget_overrun = "cap") rewrites max_tokens in a request body: the values
// of max_tokens and max_completion_tokens the client sent (a number or null; Length 0: absent),
// each replaced in place by the capped number. With neither, `"max_tokens":N` goes in before the
// root's closing brace (PrioritySplice's offset), which /v1/completions and /v1/chat/completions
// both read. Both are rewritten when both are present: vLLM takes max_completion_tokens first.
// OutputTokens (/v1/responses): the MaxTokens pair is max_output_tokens' value, and the key added
// is "max_output_tokens", the Responses API's name for it.
internal readonly record struct MaxTokensSplice(int MaxTokensOffset, int MaxTokensLength, int MaxCompletionTokensOffset, int MaxCompletionTokensLength, bool OutputTokens = false)
{
    // `,"max_output_tokens":` is 21 bytes and an int at most 10.
    public const int MaxLength = 32;

    public bool HasMaxTokens => MaxTokensLength > 0;

    public bool HasMaxCompletionTokens => MaxCompletionTokensLength > 0;

    // The number alone, for a value replaced in place.
    public static ReadOnlySpan<byte> FormatValue(int maxTokens, Span<byte> destination)
    {
        Utf8Formatter.TryFormat(maxTokens, destination, out var digits);
        return destination[..digits];
    }

    // The key and the number, for a body without either key.
    public ReadOnlySpan<byte> FormatKey(int maxTokens, bool afterProperty, Span<byte> destination)
    {
        var key = OutputTokens
            ? afterProperty ? ",\"max_output_tokens\":"u8 : "\"max_output_tokens\":"u8
            : afterProperty ? ",\"max_tokens\":"u8 : "\"max_tokens\":"u8;
        key.CopyTo(destination);
        Utf8Formatter.TryFormat(maxTokens, destination[key.Length..], out var digits);
        return destination[..(key.Length + digits)];
    }
}
