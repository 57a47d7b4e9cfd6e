using System.Buffers;
using AotProxy.Memory;

namespace AotProxy.Upstream;

// A pooled byte array holding a window of unconsumed bytes [Start, End): filled at the end,
// consumed from the front, compacted or grown (up to a bound) when the free end runs short,
// and handed back to the pool whenever it is empty, so an idle connection holds no buffer.
internal sealed class PooledWindow(int initialSize, int maxSize, string overflowMessage)
{
    private const int MinFree = 2048;

    private byte[]? _array;

    public int Start { get; private set; }

    public int End { get; private set; }

    // False while the window is empty: it rents its array only when bytes are to land in it.
    public bool HoldsBuffer => _array is not null;

    public ReadOnlySequence<byte> Unconsumed =>
        _array is null ? default : new ReadOnlySequence<byte>(_array, Start, End - Start);

    // The free end, at least 2 KiB of it.
    public Memory<byte> Free()
    {
        if (_array is null)
        {
            _array = BufferPool.Shared.Rent(initialSize);
            Start = End = 0;
        }
        else if (_array.Length - End < MinFree)
        {
            var pending = End - Start;
            var target = _array;
            if (pending + MinFree > _array.Length)
            {
                if (_array.Length * 2 > maxSize)
                {
                    throw new UpstreamProtocolException(overflowMessage);
                }

                target = BufferPool.Shared.Rent(_array.Length * 2);
            }

            _array.AsSpan(Start, pending).CopyTo(target);
            if (!ReferenceEquals(target, _array))
            {
                BufferPool.Shared.Return(_array);
                _array = target;
            }

            Start = 0;
            End = pending;
        }

        return _array.AsMemory(End);
    }

    public void Filled(int count) => End += count;

    // `position` is an index into the array, as SequencePosition.GetInteger() gives it for Unconsumed.
    public void ConsumeTo(int position)
    {
        Start = position;
        if (Start == End)
        {
            Return();
        }
    }

    public void Return()
    {
        if (_array is { } array)
        {
            _array = null;
            Start = End = 0;
            BufferPool.Shared.Return(array);
        }
    }
}
