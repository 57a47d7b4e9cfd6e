using System.Buffers;
using System.Text;
using System.Text.Json;

namespace AotProxy.Simulator;

// One forward pass of Utf8JsonReader over the body as Kestrel buffered it (a ReadOnlySequence, no copy).
//
// The prompt is "rendered" into bytes the way a chat template would: for chat, each message adds
// its role, a newline, its text content and a newline; for completions the prompt text as is; an
// array of token ids adds 4 bytes per id. Prompt tokens = ceil(rendered bytes / 4), the usual
// rule of thumb for English with a BPE tokenizer. The same bytes, cut in blocks of BlockSize * 4,
// are the prefix-cache keys, so token counts and cache blocks agree.
internal static class RequestParser
{
    private const int BytesPerToken = 4;

    public static ParsedRequest? Parse(ReadOnlySequence<byte> body, RequestKind kind, int blockSize, out string? error)
    {
        var request = new ParsedRequest { Kind = kind };
        var rendered = new ArrayBufferWriter<byte>(256);
        var tokenIds = 0;
        error = null;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "The request body must be a JSON object.";
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    request.Model = reader.TokenType == JsonTokenType.Null ? null : ReadString(ref reader, "model");
                }
                else if (reader.ValueTextEquals("messages"u8) && kind is RequestKind.Chat or RequestKind.Messages or RequestKind.Tokenize)
                {
                    reader.Read();
                    ReadMessages(ref reader, rendered);
                    request.HasPrompt = true;
                }
                else if (reader.ValueTextEquals("prompt"u8) && kind is RequestKind.Completion or RequestKind.Tokenize)
                {
                    reader.Read();
                    tokenIds += ReadInputs(ref reader, rendered, null);
                    request.HasPrompt = true;
                }
                else if (reader.ValueTextEquals("input"u8) && kind == RequestKind.Responses)
                {
                    // A string (the user's turn) or a list of input items with role and content.
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        rendered.Write("user\n"u8);
                        AppendString(ref reader, rendered);
                        rendered.Write("\n"u8);
                    }
                    else
                    {
                        ReadMessages(ref reader, rendered);
                    }

                    request.HasPrompt = true;
                }
                else if ((kind == RequestKind.Messages && reader.ValueTextEquals("system"u8)) || (kind == RequestKind.Responses && reader.ValueTextEquals("instructions"u8)))
                {
                    // Rendered as the system message vLLM makes of it.
                    reader.Read();
                    rendered.Write("system\n"u8);
                    ReadContent(ref reader, rendered);
                    rendered.Write("\n"u8);
                }
                else if (reader.ValueTextEquals("max_output_tokens"u8) && kind == RequestKind.Responses)
                {
                    reader.Read();
                    request.MaxTokens = ReadOptionalInt(ref reader, "max_output_tokens");
                }
                else if (reader.ValueTextEquals("input"u8) && kind is RequestKind.Embedding or RequestKind.Pooling or RequestKind.Classify)
                {
                    reader.Read();
                    tokenIds += ReadInputs(ref reader, rendered, request.InputHashes);
                    request.HasPrompt = true;
                }
                else if (reader.ValueTextEquals("query"u8) && kind == RequestKind.Rerank)
                {
                    reader.Read();
                    request.Query = ReadString(ref reader, "query");
                }
                else if (reader.ValueTextEquals("documents"u8) && kind == RequestKind.Rerank)
                {
                    reader.Read();
                    ReadTexts(ref reader, request.Documents, "documents");
                }
                else if (reader.ValueTextEquals("top_n"u8) && kind == RequestKind.Rerank)
                {
                    reader.Read();
                    request.TopN = ReadOptionalInt(ref reader, "top_n") ?? 0;
                }
                else if (reader.ValueTextEquals("text_1"u8) && kind == RequestKind.Score)
                {
                    reader.Read();
                    ReadTexts(ref reader, request.Texts1, "text_1");
                }
                else if (reader.ValueTextEquals("text_2"u8) && kind == RequestKind.Score)
                {
                    reader.Read();
                    ReadTexts(ref reader, request.Texts2, "text_2");
                }
                else if (reader.ValueTextEquals("tokens"u8) && kind == RequestKind.Detokenize)
                {
                    reader.Read();
                    Expect(ref reader, JsonTokenType.StartArray, "tokens");
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        request.TokenIds.Add(ReadOptionalInt(ref reader, "tokens[]") ?? throw new FormatException("tokens[] must be an integer."));
                        AppendTokenId(ref reader, rendered);
                        tokenIds++;
                    }

                    request.HasPrompt = true;
                }
                else if (reader.ValueTextEquals("max_tokens"u8))
                {
                    reader.Read();
                    request.MaxTokens = ReadOptionalInt(ref reader, "max_tokens");
                }
                else if (reader.ValueTextEquals("max_completion_tokens"u8))
                {
                    reader.Read();
                    request.MaxCompletionTokens = ReadOptionalInt(ref reader, "max_completion_tokens");
                }
                else if (reader.ValueTextEquals("stream"u8))
                {
                    reader.Read();
                    request.Stream = ReadOptionalBool(ref reader, "stream");
                }
                else if (reader.ValueTextEquals("ignore_eos"u8))
                {
                    reader.Read();
                    request.IgnoreEos = ReadOptionalBool(ref reader, "ignore_eos");
                }
                else if (reader.ValueTextEquals("seed"u8))
                {
                    reader.Read();
                    request.Seed = reader.TokenType == JsonTokenType.Null ? null : ReadLong(ref reader, "seed");
                }
                else if (reader.ValueTextEquals("priority"u8))
                {
                    // A later duplicate overwrites an earlier one: Python's json keeps the last.
                    reader.Read();
                    request.Priority = ReadInt(ref reader, "priority");
                }
                else if (reader.ValueTextEquals("cache_salt"u8))
                {
                    // vLLM: a non-empty string, or null; a later duplicate wins (Python's json).
                    reader.Read();
                    request.CacheSalt = reader.TokenType switch
                    {
                        JsonTokenType.Null => null,
                        JsonTokenType.String when reader.GetString() is { Length: > 0 } salt => salt,
                        _ => throw new FormatException("Parameter 'cache_salt' must be a non-empty string if provided."),
                    };
                }
                else if (reader.ValueTextEquals("stream_options"u8))
                {
                    reader.Read();
                    ReadStreamOptions(ref reader, request);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException ex)
        {
            error = $"Invalid JSON in request body: {ex.Message}";
            return null;
        }
        catch (InvalidOperationException ex)
        {
            error = $"Invalid JSON in request body: {ex.Message}";
            return null;
        }
        catch (FormatException ex)
        {
            error = ex.Message;
            return null;
        }

        if (kind is RequestKind.Rerank or RequestKind.Score)
        {
            error = RenderPairs(request, rendered);
            if (error is not null)
            {
                return null;
            }
        }

        if (!request.HasPrompt)
        {
            var field = kind switch
            {
                RequestKind.Chat or RequestKind.Messages => "messages",
                RequestKind.Completion or RequestKind.Tokenize => "prompt",
                RequestKind.Rerank => "query",
                RequestKind.Score => "text_1",
                RequestKind.Detokenize => "tokens",
                _ => "input",
            };
            error = $"1 validation error: body.{field}: Field required";
            return null;
        }

        if (kind == RequestKind.Messages && request.MaxTokens is null)
        {
            // AnthropicMessagesRequest: max_tokens is required (and positive, which Validate checks).
            error = "1 validation error: body.max_tokens: Field required";
            return null;
        }

        var text = rendered.WrittenSpan;
        request.PromptTokens = Math.Max(1, checked((int)(((long)text.Length - (tokenIds * BytesPerToken) + BytesPerToken - 1) / BytesPerToken) + tokenIds));
        request.PromptHash = Fnv1a.Hash(text);
        request.BlockHashes = BlockHashes(text, blockSize, request.CacheSalt);
        return request;
    }

    // vLLM scores each (query, document) pair as one sequence: the pairs are the prompt, and each
    // pair's hash seeds its score. Score's text_1 is one text for every text_2, or one per text_2.
    private static string? RenderPairs(ParsedRequest request, ArrayBufferWriter<byte> rendered)
    {
        var queries = request.Kind == RequestKind.Rerank ? (request.Query is { } query ? [query] : []) : request.Texts1;
        var documents = request.Kind == RequestKind.Rerank ? request.Documents : request.Texts2;
        if (queries.Count == 0 || documents.Count == 0)
        {
            return null; // HasPrompt stays false: the missing field's error
        }

        if (queries.Count != 1 && queries.Count != documents.Count)
        {
            return $"text_1 has {queries.Count} texts and text_2 {documents.Count}: text_1 must be one text or as many as text_2.";
        }

        for (var i = 0; i < documents.Count; i++)
        {
            var start = rendered.WrittenCount;
            rendered.Write(Encoding.UTF8.GetBytes(queries[queries.Count == 1 ? 0 : i]));
            rendered.Write(Encoding.UTF8.GetBytes(documents[i]));
            request.InputHashes.Add(Fnv1a.Hash(rendered.WrittenSpan[start..]));
        }

        request.HasPrompt = true;
        return null;
    }

    // A string, or an array of strings.
    private static void ReadTexts(ref Utf8JsonReader reader, List<string> into, string field)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            into.Add(reader.GetString()!);
            return;
        }

        Expect(ref reader, JsonTokenType.StartArray, field);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            into.Add(ReadString(ref reader, field + "[]"));
        }
    }

    // Chained: block i's key covers blocks 0..i, so a hit on block i implies the whole prefix matched.
    // A salt seeds the chain, as vLLM mixes cache_salt into the first block's hash only.
    private static ulong[] BlockHashes(ReadOnlySpan<byte> text, int blockSize, string? salt)
    {
        var blockBytes = blockSize * BytesPerToken;
        var hashes = new ulong[text.Length / blockBytes];
        var state = salt is null ? Fnv1a.OffsetBasis : Fnv1a.Hash(Encoding.UTF8.GetBytes(salt));
        for (var i = 0; i < hashes.Length; i++)
        {
            state = Fnv1a.Hash(text.Slice(i * blockBytes, blockBytes), state);
            hashes[i] = state;
        }

        return hashes;
    }

    private static void ReadMessages(ref Utf8JsonReader reader, ArrayBufferWriter<byte> rendered)
    {
        Expect(ref reader, JsonTokenType.StartArray, "messages");
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            Expect(ref reader, JsonTokenType.StartObject, "messages[]");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("role"u8))
                {
                    reader.Read();
                    Expect(ref reader, JsonTokenType.String, "role");
                    AppendString(ref reader, rendered);
                    rendered.Write("\n"u8);
                }
                else if (reader.ValueTextEquals("content"u8))
                {
                    reader.Read();
                    ReadContent(ref reader, rendered);
                    rendered.Write("\n"u8);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
    }

    // A string, null (assistant turns with tool calls) or an array of parts; only text parts count.
    private static void ReadContent(ref Utf8JsonReader reader, ArrayBufferWriter<byte> rendered)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                AppendString(ref reader, rendered);
                return;
            case JsonTokenType.Null:
                return;
            case JsonTokenType.StartArray:
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        continue;
                    }

                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isText = reader.ValueTextEquals("text"u8);
                        reader.Read();
                        if (isText && reader.TokenType == JsonTokenType.String)
                        {
                            AppendString(ref reader, rendered);
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }
                }

                return;
            default:
                throw new FormatException("messages[].content must be a string, an array of parts or null.");
        }
    }

    // A string, an array of strings, an array of token ids, or an array of arrays of token ids.
    // Returns how many token ids were read (they count one token each, not bytes / 4).
    private static int ReadInputs(ref Utf8JsonReader reader, ArrayBufferWriter<byte> rendered, List<ulong>? itemHashes)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            AddItem(ref reader, rendered, itemHashes);
            return 0;
        }

        Expect(ref reader, JsonTokenType.StartArray, "prompt");
        var ids = 0;
        var flatIdsStart = -1;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    AddItem(ref reader, rendered, itemHashes);
                    break;
                case JsonTokenType.Number:
                    flatIdsStart = flatIdsStart < 0 ? rendered.WrittenCount : flatIdsStart;
                    AppendTokenId(ref reader, rendered);
                    ids++;
                    break;
                case JsonTokenType.StartArray:
                    var start = rendered.WrittenCount;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        AppendTokenId(ref reader, rendered);
                        ids++;
                    }

                    itemHashes?.Add(Fnv1a.Hash(rendered.WrittenSpan[start..]));
                    break;
                default:
                    throw new FormatException("prompt/input items must be strings or token ids.");
            }
        }

        if (flatIdsStart >= 0)
        {
            itemHashes?.Add(Fnv1a.Hash(rendered.WrittenSpan[flatIdsStart..]));
        }

        return ids;
    }

    private static void AddItem(ref Utf8JsonReader reader, ArrayBufferWriter<byte> rendered, List<ulong>? itemHashes)
    {
        var start = rendered.WrittenCount;
        AppendString(ref reader, rendered);
        itemHashes?.Add(Fnv1a.Hash(rendered.WrittenSpan[start..]));
    }

    private static void AppendTokenId(ref Utf8JsonReader reader, ArrayBufferWriter<byte> rendered)
    {
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out var id))
        {
            throw new FormatException("Token ids must be integers.");
        }

        BitConverter.TryWriteBytes(rendered.GetSpan(BytesPerToken), id);
        rendered.Advance(BytesPerToken);
    }

    private static void AppendString(ref Utf8JsonReader reader, ArrayBufferWriter<byte> rendered)
    {
        // Unescaping never makes a string longer, so the raw length bounds the copy.
        var raw = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        var written = reader.CopyString(rendered.GetSpan(raw));
        rendered.Advance(written);
    }

    private static void ReadStreamOptions(ref Utf8JsonReader reader, ParsedRequest request)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return;
        }

        Expect(ref reader, JsonTokenType.StartObject, "stream_options");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isUsage = reader.ValueTextEquals("include_usage"u8);
            reader.Read();
            if (isUsage)
            {
                request.IncludeUsage = ReadOptionalBool(ref reader, "include_usage");
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private static string ReadString(ref Utf8JsonReader reader, string field)
    {
        Expect(ref reader, JsonTokenType.String, field);
        return reader.GetString()!;
    }

    private static int? ReadOptionalInt(ref Utf8JsonReader reader, string field)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out var value))
        {
            throw new FormatException($"{field} must be an integer.");
        }

        return value;
    }

    // Not nullable: vLLM declares `priority: int = 0`, so pydantic refuses null.
    private static int ReadInt(ref Utf8JsonReader reader, string field) =>
        ReadOptionalInt(ref reader, field) ?? throw new FormatException($"{field} must be an integer.");

    private static long ReadLong(ref Utf8JsonReader reader, string field)
    {
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var value))
        {
            throw new FormatException($"{field} must be an integer.");
        }

        return value;
    }

    private static bool ReadOptionalBool(ref Utf8JsonReader reader, string field) => reader.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False or JsonTokenType.Null => false,
        _ => throw new FormatException($"{field} must be a boolean."),
    };

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string field)
    {
        if (reader.TokenType != type)
        {
            throw new FormatException($"{field}: expected {type}, got {reader.TokenType}.");
        }
    }
}
