using System.Text;
using System.Text.Json;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Routing;
using CommunityToolkit.HighPerformance.Buffers;

namespace AotProxy.Inspection;

// One forward-only Utf8JsonReader pass over a request body (OpenAI's chat, completions and
// embeddings, the Responses API, Anthropic's Messages API). It reads the few fields the gateway
// decides on, sizes the prompt from its text on the way (PromptSize), and skips everything else
// (tools, images, ...) without building a DOM.
internal static class RequestInspector
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    // The prompt prefix that routing keys cache affinity on: the first 1 KiB of the raw
    // messages/prompt JSON, about 250 tokens, which covers a system prompt's opening. vLLM caches
    // in 16-token blocks from the start, so requests that share these bytes share cached blocks.
    public const int PrefixBytes = 1024;

    // The longest model name (in UTF-8 bytes) taken from the string pool: real names are well under
    // it (meta-llama/Llama-3.1-8B-Instruct is 32), and a client's made-up 4 MiB name must not stay
    // in the pool. The pool keeps the most used of at least 512 names: a few hundred KiB at worst.
    internal const int MaxPooledModelBytes = 128;

    private static readonly StringPool ModelNames = new(512);

    public static InspectionError Inspect(ReadOnlySpan<byte> body, out InspectedRequest request, out string? errorParam, EndpointKind endpoint = EndpointKind.ChatCompletions) =>
        Inspect(body, default, out request, out errorParam, endpoint: endpoint);

    // chunks: where the prompt's chained chunk hashes go (PromptChunks); InspectedRequest.PromptChunks
    // says how many were written. Empty: none are computed.
    // salt: the tenant's TenantCacheSalt.Seed (0: none), mixed into the prefix hash and the chunk hashes.
    // endpoint: which API's fields count, and which texts are the prompt (EndpointTraits).
    // Responses: max_output_tokens is the completion reservation, and `instructions` is prompt.
    // Messages: max_tokens is required, `system` is prompt. Neither has stream_options: their
    // streams always carry usage, so nothing is injected. An endpoint that does not generate never
    // streams, whatever its body says (vLLM ignores `stream` there), and a tokenizer endpoint's
    // prompt costs nothing.
    public static InspectionError Inspect(ReadOnlySpan<byte> body, Span<ulong> chunks, out InspectedRequest request, out string? errorParam, ulong salt = 0, EndpointKind endpoint = EndpointKind.ChatCompletions)
    {
        request = default;
        errorParam = null;
        try
        {
            return InspectCore(body, chunks, salt, endpoint, out request, out errorParam);
        }
        catch (JsonException)
        {
            return InspectionError.InvalidJson;
        }
    }

    // The model name, the routing table's and the allowlist's key. The same few names come with
    // every request: StringPool returns the string it made for the same bytes before, instead of a
    // new one per request (88 B; perf/RESULTS.md, issue 15). An escaped or long name is decoded as it is.
    private static string ReadModel(ref Utf8JsonReader reader) =>
        !reader.ValueIsEscaped ? ModelName(reader.ValueSpan) : reader.GetString()!;

    // Unescaped UTF-8 (a JSON string's, a form field's): pooled unless it is long.
    public static string ModelName(ReadOnlySpan<byte> utf8) =>
        utf8.Length <= MaxPooledModelBytes ? ModelNames.GetOrAdd(utf8, Encoding.UTF8) : Encoding.UTF8.GetString(utf8);

    private static InspectionError InspectCore(ReadOnlySpan<byte> body, Span<ulong> chunks, ulong salt, EndpointKind endpoint, out InspectedRequest request, out string? errorParam)
    {
        request = default;
        errorParam = null;
        var reader = new Utf8JsonReader(body, ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return InspectionError.NotAnObject;
        }

        var rootOpen = (int)reader.TokenStartIndex;
        var isResponses = endpoint == EndpointKind.Responses;
        var openAiLimits = endpoint is not (EndpointKind.Responses or EndpointKind.Messages); // max_completion_tokens, stream_options
        var rootHasProperties = false;
        string? model = null;
        var stream = false;
        var maxTokens = 0;
        var sawMaxTokens = false;
        var maxCompletionTokens = 0;
        (int Offset, int Length) maxTokensValue = default;
        (int Offset, int Length) maxCompletionTokensValue = default;
        var includeUsage = false;
        var splice = default(UsageSplice);
        var sawStreamOptions = false;
        ulong prefixHash = 0;
        ulong userHash = 0;
        var prompt = default(PromptSize);
        var queries = default(PromptSize); // rerank's query, score's text_1: paired with each document
        var promptChunks = 0;
        var cacheSalt = default(CacheSaltSplice);
        var pairs = EndpointTraits.ScoresPairs(endpoint);
        var modelSplice = default(ModelSplice);
        var hasTools = false;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            rootHasProperties = true;
            if (!JsonText.IsReadableName(ref reader))
            {
                reader.Read();
                reader.Skip();
            }
            else if (reader.ValueTextEquals("model"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                {
                    errorParam = "model";
                    return InspectionError.InvalidField;
                }

                if (!JsonText.IsValid(reader.ValueSpan))
                {
                    errorParam = "model";
                    return InspectionError.InvalidText;
                }

                model = ReadModel(ref reader);
                var modelStart = (int)reader.TokenStartIndex;
                modelSplice = new ModelSplice(modelStart, (int)reader.BytesConsumed - modelStart);
            }
            else if (reader.ValueTextEquals("stream"u8))
            {
                reader.Read();
                switch (reader.TokenType)
                {
                    case JsonTokenType.True: stream = true; break;
                    case JsonTokenType.False or JsonTokenType.Null: stream = false; break;
                    default: errorParam = "stream"; return InspectionError.InvalidField;
                }
            }
            else if (isResponses ? reader.ValueTextEquals("max_output_tokens"u8) : reader.ValueTextEquals("max_tokens"u8))
            {
                // Responses: max_output_tokens takes max_tokens' place, its reservation and the cap's splice.
                if (!TryReadTokenCount(ref reader, out maxTokens, out maxTokensValue))
                {
                    errorParam = isResponses ? "max_output_tokens" : "max_tokens";
                    return InspectionError.InvalidField;
                }

                sawMaxTokens = maxTokensValue.Length > 0 && maxTokens > 0;
            }
            else if (openAiLimits && reader.ValueTextEquals("max_completion_tokens"u8))
            {
                if (!TryReadTokenCount(ref reader, out maxCompletionTokens, out maxCompletionTokensValue))
                {
                    errorParam = "max_completion_tokens";
                    return InspectionError.InvalidField;
                }
            }
            else if (openAiLimits && reader.ValueTextEquals("stream_options"u8))
            {
                sawStreamOptions = true;
                reader.Read();
                (includeUsage, splice) = InspectStreamOptions(ref reader);
            }
            else if (reader.ValueTextEquals("messages"u8) || reader.ValueTextEquals("prompt"u8) || reader.ValueTextEquals("input"u8)
                || (pairs && IsPairText(ref reader)))
            {
                var isMessages = reader.ValueTextEquals("messages"u8);
                var first = prefixHash == 0;
                ref var size = ref pairs && IsQueryText(ref reader) ? ref queries : ref prompt;
                reader.Read();
                var start = (int)reader.TokenStartIndex;

                // Chunks only of a value vLLM would take as a prompt: messages is an array, prompt and input a string or an array.
                var modelled = reader.TokenType == JsonTokenType.StartArray || (!isMessages && reader.TokenType == JsonTokenType.String);
                if (isMessages || (isResponses && reader.TokenType == JsonTokenType.StartArray))
                {
                    size.AddMessages(ref reader); // a Responses input list is items with `content`, as messages
                }
                else
                {
                    size.AddInputs(ref reader);
                }

                // A query and its documents: the first text (the query) keys the cache affinity.
                if (first || !pairs)
                {
                    var raw = body[start..(int)reader.BytesConsumed];
                    prefixHash = StableHash.Of(raw[..Math.Min(raw.Length, PrefixBytes)]);
                    prefixHash = salt == 0 || prefixHash == salt ? prefixHash : prefixHash ^ salt; // never 0
                    promptChunks = modelled ? PromptChunks.Hash(raw, chunks, salt) : 0;
                }
            }
            else if (endpoint == EndpointKind.Messages ? reader.ValueTextEquals("system"u8) : isResponses && reader.ValueTextEquals("instructions"u8))
            {
                // The system prompt, outside messages/input: sized, not hashed (routing keys on the conversation).
                reader.Read();
                prompt.AddContent(ref reader); // a string, or Anthropic's system blocks: {"type":"text","text":…}
            }
            else if (reader.ValueTextEquals("cache_salt"u8))
            {
                // Only where it is: the gateway replaces it with the tenant's salt, or leaves it to vLLM.
                reader.Read();
                var (start, length) = SkipValue(ref reader);
                cacheSalt = new CacheSaltSplice(start, length);
            }
            else if (reader.ValueTextEquals("tools"u8))
            {
                // Only an array with a tool in it asks for tool calling ([] and null do not).
                reader.Read();
                var start = (int)reader.TokenStartIndex;
                var isArray = reader.TokenType == JsonTokenType.StartArray;
                reader.Skip();
                hasTools = isArray && !body[(start + 1)..((int)reader.BytesConsumed - 1)].Trim(" \t\r\n"u8).IsEmpty;
            }
            else if (reader.ValueTextEquals("user"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String)
                {
                    userHash = StableHash.Of(reader.ValueSpan);
                }
                else
                {
                    reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject)
        {
            return InspectionError.InvalidJson;
        }

        // Anything after the root object but whitespace (a second value, garbage) throws here.
        var rootClose = (int)reader.TokenStartIndex;
        if (reader.Read())
        {
            return InspectionError.InvalidJson;
        }

        if (string.IsNullOrEmpty(model))
        {
            errorParam = "model";
            return InspectionError.MissingModel;
        }

        if (endpoint == EndpointKind.Messages && !sawMaxTokens)
        {
            errorParam = "max_tokens";
            return InspectionError.MissingMaxTokens;
        }

        if (!openAiLimits)
        {
            splice = default; // nothing to turn on: NeedsUsageInjection is false
        }
        else if (!sawStreamOptions)
        {
            splice = new UsageSplice(
                rootOpen + 1,
                0,
                rootHasProperties ? UsageSpliceKind.AddStreamOptions : UsageSpliceKind.AddStreamOptionsLast);
        }

        var generates = EndpointTraits.Generates(endpoint);
        request = new InspectedRequest(
            model,
            stream && generates,
            includeUsage,
            maxCompletionTokens > 0 ? maxCompletionTokens : maxTokens,
            splice,
            new PrioritySplice(rootClose, rootHasProperties),
            prefixHash,
            userHash,
            new MaxTokensSplice(maxTokensValue.Offset, maxTokensValue.Length, maxCompletionTokensValue.Offset, maxCompletionTokensValue.Length, isResponses),
            !EndpointTraits.UsesTokens(endpoint) ? 0 : pairs ? PromptSize.Paired(queries, prompt) : prompt.Tokens,
            promptChunks,
            cacheSalt,
            modelSplice,
            (hasTools ? ModelCapabilities.Tools : ModelCapabilities.None) | (prompt.HasImages ? ModelCapabilities.Vision : ModelCapabilities.None));
        return InspectionError.None;
    }

    // The reader is on stream_options' value. Returns whether include_usage is true, and the
    // splice that would make it true. Only a value vLLM accepts is spliced: null, or an object whose
    // include_usage and continuous_usage_stats are booleans or null (vLLM's StreamOptions; other keys
    // pass). Anything else ("x", [1,2], 1, {"include_usage":"yes"}) gets no splice, so the body goes
    // upstream unchanged and the worker answers it: rewritten, it became a 200 where vLLM says 400.
    private static (bool IncludeUsage, UsageSplice Splice) InspectStreamOptions(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            var isNull = reader.TokenType == JsonTokenType.Null;
            var (start, length) = SkipValue(ref reader);
            return (false, isNull ? new UsageSplice(start, length, UsageSpliceKind.ReplaceStreamOptionsValue) : default);
        }

        var open = (int)reader.TokenStartIndex;
        var hasProperties = false;
        var includeUsage = false;
        UsageSplice? replace = null;
        // Python's json keeps the last of duplicate keys, so the last value of each decides.
        var includeUsageValid = true;
        var continuousValid = true;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            hasProperties = true;
            var readable = JsonText.IsReadableName(ref reader);
            var isIncludeUsage = readable && reader.ValueTextEquals("include_usage"u8);
            var isContinuous = readable && reader.ValueTextEquals("continuous_usage_stats"u8);
            reader.Read();
            if (isContinuous)
            {
                continuousValid = IsOptionalBool(reader.TokenType);
            }

            if (!isIncludeUsage)
            {
                reader.Skip();
                continue;
            }

            includeUsage = reader.TokenType == JsonTokenType.True;
            includeUsageValid = IsOptionalBool(reader.TokenType);
            var (start, length) = SkipValue(ref reader);
            replace = new UsageSplice(start, length, UsageSpliceKind.ReplaceIncludeUsageValue);
        }

        if (!includeUsageValid || !continuousValid)
        {
            return (false, default);
        }

        return (includeUsage, replace ?? new UsageSplice(
            open + 1,
            0,
            hasProperties ? UsageSpliceKind.AddIncludeUsage : UsageSpliceKind.AddIncludeUsageLast));
    }

    // vLLM's rerank (query, documents) and score (text_1, text_2; newer: queries, documents, and
    // data_1, data_2) texts. Each is counted once; vLLM pairs the query with every document, so the
    // usage it reports is larger than this estimate by the query's tokens per extra document.
    private static bool IsPairText(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("query"u8) || reader.ValueTextEquals("documents"u8) || reader.ValueTextEquals("text_1"u8)
        || reader.ValueTextEquals("text_2"u8) || reader.ValueTextEquals("queries"u8) || reader.ValueTextEquals("data_1"u8)
        || reader.ValueTextEquals("data_2"u8);

    // The side of a pair that vLLM repeats for every document when it is one text.
    private static bool IsQueryText(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("query"u8) || reader.ValueTextEquals("text_1"u8) || reader.ValueTextEquals("queries"u8) || reader.ValueTextEquals("data_1"u8);

    private static bool IsOptionalBool(JsonTokenType type) => type is JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null;

    private static (int Start, int Length) SkipValue(ref Utf8JsonReader reader)
    {
        var start = (int)reader.TokenStartIndex;
        reader.Skip();
        return (start, (int)reader.BytesConsumed - start);
    }

    // span: where the value's bytes are (a number or null is never escaped), for MaxTokensSplice.
    private static bool TryReadTokenCount(ref Utf8JsonReader reader, out int value, out (int Offset, int Length) span)
    {
        reader.Read();
        value = 0;
        span = ((int)reader.TokenStartIndex, reader.ValueSpan.Length);
        if (reader.TokenType == JsonTokenType.Null)
        {
            return true;
        }

        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var parsed) || parsed < 0)
        {
            return false;
        }

        value = (int)Math.Min(parsed, int.MaxValue);
        return true;
    }
}
