using System.Text.Json;

namespace AotProxy.Accounting;

// What tells one typed-event API's stream events apart (UsageEventReader walks the rest): its event
// types, the text a `delta` carries, the member that holds its usage, and the chunk kind the three
// make. Static members on a struct: the generic walk calls them without a virtual call.
internal interface IUsageEventFormat
{
    // The member whose object holds a `usage` object: "response" (Responses), "message" (Messages).
    static abstract ReadOnlySpan<byte> UsageHolder { get; }

    // The reader is on the `type` string: the format's number for it (0: a type it does not count).
    static abstract byte Classify(ref Utf8JsonReader reader);

    // The reader is on the `delta` value's first token: true when it carries generated text. On
    // return the reader is on the value's last token.
    static abstract bool DeltaHasText(ref Utf8JsonReader reader);

    static abstract StreamChunkKind Kind(byte type, bool text, bool hasUsage);
}
