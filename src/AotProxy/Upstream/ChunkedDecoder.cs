namespace AotProxy.Upstream;

// The chunked transfer coding (RFC 9112 §7.1) as a byte-at-a-time state machine for the framing
// and a bulk copy for the data, so input may be split anywhere. Extensions and trailers are
// read and dropped.
internal struct ChunkedDecoder
{
    // Bounds for what the worker may send around the data: an endless extension or trailer
    // section must not pin the connection.
    private const int MaxFramingBytes = 16 * 1024;

    private State _state;
    private long _remaining;
    private int _digits;
    private int _framingBytes;

    private enum State : byte
    {
        Size,
        Extension,
        SizeLf,
        Data,
        DataCr,
        DataLf,
        TrailerStart,
        TrailerLine,
        TrailerLineLf,
        EndLf,
        Done,
        Invalid,
    }

    public readonly bool IsDone => _state == State.Done;

    public readonly bool IsInvalid => _state == State.Invalid;

    public void Reset() => this = default;

    // Decodes from `input` into `output` until one of them runs out. `read` is how much input
    // was used, `written` how much data came out.
    public void Decode(ReadOnlySpan<byte> input, Span<byte> output, out int read, out int written)
    {
        read = 0;
        written = 0;
        while (read < input.Length && _state is not (State.Done or State.Invalid))
        {
            if (_state == State.Data)
            {
                var count = (int)Math.Min(_remaining, Math.Min(input.Length - read, output.Length - written));
                if (count == 0)
                {
                    return; // output is full
                }

                input.Slice(read, count).CopyTo(output[written..]);
                read += count;
                written += count;
                _remaining -= count;
                if (_remaining == 0)
                {
                    _state = State.DataCr;
                }

                continue;
            }

            if (++_framingBytes > MaxFramingBytes)
            {
                _state = State.Invalid;
                return;
            }

            _state = Step(input[read++]);
        }
    }

    private State Step(byte b)
    {
        switch (_state)
        {
            case State.Size:
                var digit = HexValue(b);
                if (digit >= 0)
                {
                    // 15 hex digits: up to 2^60 bytes, no overflow.
                    if (++_digits > 15)
                    {
                        return State.Invalid;
                    }

                    _remaining = (_remaining << 4) | (uint)digit;
                    return State.Size;
                }

                if (_digits == 0)
                {
                    return State.Invalid;
                }

                return b switch
                {
                    (byte)'\r' => State.SizeLf,
                    (byte)';' or (byte)' ' or (byte)'\t' => State.Extension,
                    _ => State.Invalid,
                };
            case State.Extension:
                return b switch
                {
                    (byte)'\r' => State.SizeLf,
                    (byte)'\n' or 0 => State.Invalid,
                    _ => State.Extension,
                };
            case State.SizeLf:
                if (b != (byte)'\n')
                {
                    return State.Invalid;
                }

                _digits = 0;
                _framingBytes = 0;
                return _remaining == 0 ? State.TrailerStart : State.Data;
            case State.DataCr:
                return b == (byte)'\r' ? State.DataLf : State.Invalid;
            case State.DataLf:
                return b == (byte)'\n' ? State.Size : State.Invalid;
            case State.TrailerStart:
                return b == (byte)'\r' ? State.EndLf : b is (byte)'\n' or 0 ? State.Invalid : State.TrailerLine;
            case State.TrailerLine:
                return b switch
                {
                    (byte)'\r' => State.TrailerLineLf,
                    (byte)'\n' or 0 => State.Invalid,
                    _ => State.TrailerLine,
                };
            case State.TrailerLineLf:
                return b == (byte)'\n' ? State.TrailerStart : State.Invalid;
            case State.EndLf:
                return b == (byte)'\n' ? State.Done : State.Invalid;
            default:
                return State.Invalid;
        }
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
