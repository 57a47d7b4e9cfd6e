using System.Buffers.Text;

namespace AotProxy.Inspection;

// Where scheduler.engine_priority puts `"priority":N` into a request body: at Offset, the root
// object's closing brace, so that it is the body's last key. vLLM reads the body with Python's
// json (then pydantic), which keeps the last of duplicate keys: the gateway's value wins over a
// `priority` the client sent itself, and the client's bytes stay as they were.
internal readonly record struct PrioritySplice(int Offset, bool AfterProperty)
{
    // `,"priority":` is 12 bytes and an int at most 11 ("-2147483648").
    public const int MaxLength = 23;

    // Writes the bytes to insert into destination (MaxLength bytes will do) and returns them.
    public ReadOnlySpan<byte> Format(int priority, Span<byte> destination)
    {
        var key = AfterProperty ? ",\"priority\":"u8 : "\"priority\":"u8;
        key.CopyTo(destination);
        Utf8Formatter.TryFormat(priority, destination[key.Length..], out var digits);
        return destination[..(key.Length + digits)];
    }
}
