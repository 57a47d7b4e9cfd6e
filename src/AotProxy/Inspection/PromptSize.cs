using System.Buffers.Text;
using System.Text.Json;

namespace AotProxy.Inspection;

// A prompt's size as RequestInspector's one pass goes by it, without allocating: the UTF-8 bytes
// of its text (messages[].content strings and text parts, completions' `prompt`, embeddings'
// `input`; unescaped) and its token ids. Everything else in those values (roles, images, tool
// calls) is skipped. Tokens: 4 bytes of text each, the rule of thumb for English with a BPE
// tokenizer (and the simulator's count), plus one per token id. Bytes rather than characters, so
// a script with several bytes and about as many tokens per character is not underestimated 3x.
// The body's size is no estimate: a 200-character chat is ~2x its text in JSON.
internal struct PromptSize
{
    public const int BytesPerToken = 4;

    private long _textBytes;
    private long _tokenIds;

    // A content part carried an image (OpenAI's {"type":"image_url","image_url":{...}}): model
    // "auto" then needs a model with the "vision" capability.
    public bool HasImages { get; private set; }

    public readonly long Tokens => ((_textBytes + BytesPerToken - 1) / BytesPerToken) + _tokenIds;

    // The prompts AddInputs read: each string and each token-id list (a flat list of ids is one).
    public int Inputs { readonly get; private set; }

    // Rerank and score, as vLLM's serving_score counts them: each (query, document) pair is one
    // sequence and its usage counts both, so one query (or text_1) is counted once per document;
    // with as many queries as documents, each pair once. Hence not queries + documents: a 1,000-token
    // query over 50 short documents is ~50,000 tokens, and reserving 1,000 let a tenant past its TPM.
    public static long Paired(in PromptSize queries, in PromptSize documents)
    {
        var repeat = queries.Inputs == 1 ? Math.Max(documents.Inputs, 1) : 1;
        var text = (queries._textBytes * repeat) + documents._textBytes;
        return ((text + BytesPerToken - 1) / BytesPerToken) + (queries._tokenIds * repeat) + documents._tokenIds;
    }

    // The reader is on `messages`' value; leaves it on the value's last token, as Skip does.
    public void AddMessages(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return;
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isContent = JsonText.NameEquals(ref reader, "content"u8);
                reader.Read();
                if (isContent)
                {
                    AddContent(ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
        }
    }

    // The reader is on `prompt`'s or `input`'s value: a string, or an array of strings, of token
    // ids, or of arrays of token ids.
    public void AddInputs(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            AddText(ref reader);
            Inputs++;
            return;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return;
        }

        var ids = false;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    AddText(ref reader);
                    Inputs++;
                    break;
                case JsonTokenType.Number:
                    _tokenIds++;
                    ids = true;
                    break;
                case JsonTokenType.StartArray:
                    Inputs++;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType == JsonTokenType.Number)
                        {
                            _tokenIds++;
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }

                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        Inputs += ids ? 1 : 0; // [1, 2, 3]: one prompt of token ids
    }

    // A message's content: a string, or an array of parts of which the text parts count.
    public void AddContent(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            AddText(ref reader);
            return;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return;
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isText = JsonText.NameEquals(ref reader, "text"u8);
                HasImages |= JsonText.NameEquals(ref reader, "image_url"u8);
                reader.Read();
                if (isText && reader.TokenType == JsonTokenType.String)
                {
                    AddText(ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
        }
    }

    private void AddText(ref Utf8JsonReader reader) =>
        _textBytes += reader.ValueIsEscaped ? UnescapedLength(reader.ValueSpan) : reader.ValueSpan.Length;

    // The UTF-8 length of an escaped string's value from its raw bytes: each escape is shorter
    // unescaped, \X by 1 byte, \uXXXX by 3 to 5 (it stands for 1 to 3 bytes), a surrogate pair of
    // them by 8 (4 bytes; a lone surrogate counts 3, as its replacement character). Only the
    // escapes are visited: IndexOf skips the text between them (vectorized), so a long prompt
    // costs little more than the reader's own pass. The reader has validated the escapes; the
    // bounds are checked all the same.
    internal static long UnescapedLength(ReadOnlySpan<byte> raw)
    {
        long length = raw.Length;
        var i = raw.IndexOf((byte)'\\');
        while (i >= 0 && i + 1 < raw.Length)
        {
            var escape = 2;
            var bytes = 1;
            if (raw[i + 1] == (byte)'u' && TryCodeUnit(raw, i + 2, out var unit))
            {
                escape = 6;
                if (char.IsHighSurrogate(unit) && i + 12 <= raw.Length && raw[i + 6] == (byte)'\\' && raw[i + 7] == (byte)'u'
                    && TryCodeUnit(raw, i + 8, out var low) && char.IsLowSurrogate(low))
                {
                    escape = 12;
                    bytes = 4;
                }
                else
                {
                    bytes = unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3;
                }
            }

            length -= escape - bytes;
            i += escape;
            var next = raw[i..].IndexOf((byte)'\\');
            i = next < 0 ? -1 : i + next;
        }

        return length;
    }

    private static bool TryCodeUnit(ReadOnlySpan<byte> raw, int at, out char unit)
    {
        unit = default;
        if (at + 4 > raw.Length || !Utf8Parser.TryParse(raw.Slice(at, 4), out ushort value, out var consumed, 'x') || consumed != 4)
        {
            return false;
        }

        unit = (char)value;
        return true;
    }
}
