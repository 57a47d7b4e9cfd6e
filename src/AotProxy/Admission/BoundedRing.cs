using System.Diagnostics.CodeAnalysis;
using System.Numerics;

namespace AotProxy.Admission;

// A bounded multi-producer, multi-consumer FIFO without locks (Dmitry Vyukov's bounded MPMC
// queue, as in the runtime's ConcurrentQueueSegment). A producer claims a position with one CAS
// on the tail and then publishes its item through the slot's sequence number; a consumer does
// the same on the head. Nothing is allocated after construction, and a full ring says so rather
// than growing: admission rejects instead of queueing without bound.
internal sealed class BoundedRing<T>
    where T : class
{
    // 1 Mi slots (16 MiB of slots on x64): far beyond any queue_depth worth configuring.
    public const int MaxCapacity = 1 << 20;

    private readonly RingSlot<T>[] _slots;
    private readonly int _mask;
    private PaddedHeadAndTail _headAndTail;

    public BoundedRing(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, MaxCapacity);

        // At least 2: with one slot, "holds the item of position p" (p + 1) and "free for
        // position p + 1" (p + capacity) would be the same sequence number, and a second
        // enqueue would overwrite the first.
        var size = Math.Max(2, (int)BitOperations.RoundUpToPowerOf2((uint)capacity));
        _slots = new RingSlot<T>[size];
        _mask = size - 1;
        for (var i = 0; i < _slots.Length; i++)
        {
            _slots[i].Sequence = i;
        }
    }

    public int Capacity => _slots.Length;

    // A snapshot that may be stale by the time it is read; never negative, never above Capacity.
    // Head is read first: the tail only grows and never passes below a head read earlier, so the
    // difference is not negative; it can exceed the capacity when both moved between the reads.
    public int Count
    {
        get
        {
            var head = Volatile.Read(ref _headAndTail.Head);
            var tail = Volatile.Read(ref _headAndTail.Tail);
            return (int)Math.Clamp(tail - head, 0, _slots.Length);
        }
    }

    public bool TryEnqueue(T item) => TryEnqueue(item, out _);

    // position: the item's ticket (items dequeued before it = position - Head), for a waiter's
    // place in its queue (ModelAdmission.PositionOf).
    public bool TryEnqueue(T item, out long position)
    {
        position = 0;
        var slots = _slots;
        var spinner = default(SpinWait);
        while (true)
        {
            var tail = Volatile.Read(ref _headAndTail.Tail);
            ref var slot = ref slots[tail & _mask];
            var sequence = Volatile.Read(ref slot.Sequence);
            var diff = sequence - tail;
            if (diff == 0)
            {
                if (Interlocked.CompareExchange(ref _headAndTail.Tail, tail + 1, tail) == tail)
                {
                    slot.Item = item;
                    Volatile.Write(ref slot.Sequence, tail + 1);
                    position = tail;
                    return true;
                }
            }
            else if (diff < 0)
            {
                // The slot still holds the item from one lap ago: full. (A consumer may have
                // claimed it and not yet freed it; that is full for a few instructions more.)
                return false;
            }

            // Another producer took this position first: read the tail again.
            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    // The next position to dequeue: every item with a lower position has been taken.
    public long Head => Volatile.Read(ref _headAndTail.Head);

    public bool TryDequeue([MaybeNullWhen(false)] out T item)
    {
        var slots = _slots;
        var spinner = default(SpinWait);
        while (true)
        {
            var head = Volatile.Read(ref _headAndTail.Head);
            ref var slot = ref slots[head & _mask];
            var sequence = Volatile.Read(ref slot.Sequence);
            var diff = sequence - (head + 1);
            if (diff == 0)
            {
                if (Interlocked.CompareExchange(ref _headAndTail.Head, head + 1, head) == head)
                {
                    item = slot.Item!;
                    // The ring must not keep a dequeued request (and what it holds) alive.
                    slot.Item = null;
                    Volatile.Write(ref slot.Sequence, head + slots.Length);
                    return true;
                }
            }
            else if (diff < 0 && IsEmptyAt(head))
            {
                item = null;
                return false;
            }

            // Another consumer took this position, or a producer has claimed it and is about to
            // publish its item (a few instructions; waiting keeps FIFO order and makes "false"
            // mean empty).
            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    // The item at the head, left in place. Racy by nature (it may be dequeued as it is
    // returned): for figures such as the oldest wait, not for decisions.
    public bool TryPeek([MaybeNullWhen(false)] out T item)
    {
        var slots = _slots;
        var spinner = default(SpinWait);
        while (true)
        {
            var head = Volatile.Read(ref _headAndTail.Head);
            ref var slot = ref slots[head & _mask];
            var sequence = Volatile.Read(ref slot.Sequence);
            var diff = sequence - (head + 1);
            if (diff == 0)
            {
                // A consumer clears the item before it moves the sequence on, so an item read
                // while the sequence still says "published" belongs to this position.
                var candidate = Volatile.Read(ref slot.Item);
                if (candidate is not null && Volatile.Read(ref slot.Sequence) == sequence)
                {
                    item = candidate;
                    return true;
                }
            }
            else if (diff < 0 && IsEmptyAt(head))
            {
                item = null;
                return false;
            }

            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    private bool IsEmptyAt(long head) => Volatile.Read(ref _headAndTail.Tail) - head <= 0;
}
