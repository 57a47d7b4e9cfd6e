using System.Buffers;
using System.Text.Json;
using AotProxy.Memory;

namespace AotProxy.Accounting;

// Finds the root-level `usage` object of a JSON response while the response streams through.
// Feed() gets everything not yet consumed and returns how far it got; the caller keeps the rest
// (at most one unfinished token) for the next call. So a 50 MB embeddings response is read once,
// token by token, and never held whole. No allocations.
internal struct UsageJsonScanner
{
    private const byte Start = 0, InRoot = 1, InUsage = 2, Finished = 3;

    private JsonReaderState _state;
    private byte _phase;
    private bool _nextIsUsage;
    private UsageFields _usage;

    public bool Found { get; private set; }

    public readonly Usage Usage => _usage.Usage;

    public long Feed(ReadOnlySequence<byte> buffer, bool isFinalBlock)
    {
        if (_phase == Finished)
        {
            return buffer.Length;
        }

        if (!buffer.IsSingleSegment)
        {
            return FeedSplit(buffer, isFinalBlock);
        }

        var reader = new Utf8JsonReader(buffer, isFinalBlock, _state);
        try
        {
            while (_phase != Finished && reader.Read())
            {
                Step(ref reader);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Not JSON (an HTML error page, say), or a name with an escaped lone surrogate
            // ("\ud800"), which ValueTextEquals throws InvalidOperationException on when it
            // unescapes it to compare: pass it on, account nothing.
            _phase = Finished;
            return buffer.Length;
        }

        if (_phase == Finished)
        {
            return buffer.Length;
        }

        _state = reader.CurrentState;
        return reader.BytesConsumed;
    }

    // A buffer split across segments is read from one contiguous copy: Utf8JsonReader over several
    // segments throws IndexOutOfRangeException on a literal cut short at the end of a final block
    // ("nu", a .NET bug the fuzz pass of issue 14 found). The relay's reads are one contiguous
    // buffer each, so it never pays for the copy.
    private long FeedSplit(ReadOnlySequence<byte> buffer, bool isFinalBlock)
    {
        var length = (int)buffer.Length;
        var copy = BufferPool.Shared.Rent(length);
        try
        {
            buffer.CopyTo(copy);
            return Feed(new ReadOnlySequence<byte>(copy, 0, length), isFinalBlock);
        }
        finally
        {
            BufferPool.Shared.Return(copy);
        }
    }

    private void Step(ref Utf8JsonReader reader)
    {
        switch (_phase)
        {
            case Start:
                _phase = reader.TokenType == JsonTokenType.StartObject ? InRoot : Finished;
                break;

            case InRoot when reader.CurrentDepth == 1:
                if (reader.TokenType == JsonTokenType.PropertyName)
                {
                    _nextIsUsage = reader.ValueTextEquals("usage"u8);
                }
                else if (reader.TokenType == JsonTokenType.StartObject && _nextIsUsage)
                {
                    _phase = InUsage;
                    _usage = default;
                }

                break;

            case InRoot when reader.CurrentDepth == 0:
                _phase = Finished; // end of the root object
                break;

            case InUsage when reader.CurrentDepth == 1 && reader.TokenType == JsonTokenType.EndObject:
                _phase = InRoot;
                _nextIsUsage = false;
                Found = true;
                break;

            case InUsage:
                _usage.Take(ref reader, reader.CurrentDepth - 1);
                break;
        }
    }
}
