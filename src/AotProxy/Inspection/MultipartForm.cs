using System.Buffers.Text;

namespace AotProxy.Inspection;

// Where the fields the gateway decides on are in a multipart/form-data body (vLLM's
// /v1/audio/transcriptions and /translations), as ranges of the body's own bytes: nothing is
// copied out of the upload but the model's name. MultipartFormScanner fills it in one pass, and
// Write rewrites the body in one copy, as RequestBody.Apply does a JSON body.
internal readonly record struct MultipartForm(
    Range Boundary,       // the boundary's bytes (its first delimiter's, after "--")
    int CloseOffset,      // where the close delimiter's CRLF starts: a part added to the form goes here
    Range Model,          // the `model` part's content
    Range File,           // the `file` part's content: the upload
    Range IncludeUsage,   // the `stream_include_usage` part's content, when HasIncludeUsage
    Range MaxCompletionTokens, // the `max_completion_tokens` part's content, when MaxTokens is not null
    Range ResponseFormat, // `response_format` (json, text, verbose_json, srt, vtt); empty: json
    Range Language,       // `language`; empty: the model detects it
    bool Stream,          // the `stream` part's value
    bool IncludeUsageValue,
    bool HasIncludeUsage,
    int? MaxTokens)       // max_completion_tokens' value
{
    // 11 digits of a cap, as MaxTokensSplice writes one.
    public const int MaxCapLength = 11;

    private static ReadOnlySpan<byte> PartStart => "\r\nContent-Disposition: form-data; name=\""u8;

    private static ReadOnlySpan<byte> PartEnd => "\"\r\n\r\n"u8;

    // False for a JSON body's InspectedRequest: no form was scanned.
    public bool IsForm => CloseOffset > 0;

    // Copies body into destination with the edits: the served model in place of the asked one,
    // stream_include_usage turned on (vLLM's form field for a stream's usage) and a budget's cap
    // as max_completion_tokens, each by replacing the part's value, or with a part of its own added
    // before the close delimiter. destination: Length(...) bytes. Returns the bytes written.
    public int Write(ReadOnlySpan<byte> body, Span<byte> destination, bool includeUsage, int? cap, ReadOnlySpan<byte> model)
    {
        Span<byte> capText = stackalloc byte[MaxCapLength];
        var capValue = cap is { } value && Utf8Formatter.TryFormat(value, capText, out var written) ? capText[..written] : default;
        Span<(int Offset, int Remove, byte Kind)> edits = stackalloc (int, int, byte)[3];
        var count = 0;
        if (!model.IsEmpty)
        {
            edits[count++] = Edit(Model, body.Length, 0);
        }

        if (includeUsage && HasIncludeUsage)
        {
            edits[count++] = Edit(IncludeUsage, body.Length, 1);
        }

        if (!capValue.IsEmpty && MaxTokens is not null)
        {
            edits[count++] = Edit(MaxCompletionTokens, body.Length, 2);
        }

        edits[..count].Sort(static (a, b) => a.Offset.CompareTo(b.Offset));
        var writer = new SpliceWriter(body, destination);
        foreach (var (offset, remove, kind) in edits[..count])
        {
            writer.Splice(offset, remove, kind switch { 0 => model, 1 => "true"u8, _ => capValue });
        }

        var boundary = body[Boundary];
        if (includeUsage && !HasIncludeUsage)
        {
            AddPart(ref writer, boundary, "stream_include_usage"u8, "true"u8);
        }

        if (!capValue.IsEmpty && MaxTokens is null)
        {
            AddPart(ref writer, boundary, "max_completion_tokens"u8, capValue);
        }

        return writer.Finish();
    }

    // The length Write produces.
    public int Length(ReadOnlySpan<byte> body, bool includeUsage, int? cap, ReadOnlySpan<byte> model)
    {
        var length = body.Length;
        var capLength = cap is { } value ? CountDigits(value) : 0;
        var added = PartStart.Length + PartEnd.Length + 4 + body[Boundary].Length; // CRLF "--" boundary, the headers
        if (!model.IsEmpty)
        {
            length += model.Length - body[Model].Length;
        }

        if (includeUsage)
        {
            length += HasIncludeUsage ? 4 - body[IncludeUsage].Length : added + "stream_include_usage".Length + 4;
        }

        if (cap is not null)
        {
            length += MaxTokens is not null ? capLength - body[MaxCompletionTokens].Length : added + "max_completion_tokens".Length + capLength;
        }

        return length;
    }

    private static (int, int, byte) Edit(Range range, int length, byte kind)
    {
        var (offset, count) = range.GetOffsetAndLength(length);
        return (offset, count, kind);
    }

    // CRLF "--" boundary CRLF, Content-Disposition with the name, an empty line and the value,
    // at the close delimiter (whose CRLF then ends the value).
    private void AddPart(scoped ref SpliceWriter writer, scoped ReadOnlySpan<byte> boundary, scoped ReadOnlySpan<byte> name, scoped ReadOnlySpan<byte> value)
    {
        writer.Splice(CloseOffset, 0, "\r\n--"u8);
        writer.Splice(CloseOffset, 0, boundary);
        writer.Splice(CloseOffset, 0, PartStart);
        writer.Splice(CloseOffset, 0, name);
        writer.Splice(CloseOffset, 0, PartEnd);
        writer.Splice(CloseOffset, 0, value);
    }

    private static int CountDigits(int value)
    {
        var digits = 1;
        for (; value >= 10; value /= 10)
        {
            digits++;
        }

        return digits;
    }
}
