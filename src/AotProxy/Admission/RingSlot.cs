namespace AotProxy.Admission;

// One cell of a BoundedRing. Sequence says whose turn it is: equal to the position, the cell is
// free for the producer of that position; position + 1, it holds that producer's item for the
// consumer; position + capacity, it is free again for the producer one lap later.
internal struct RingSlot<T>
    where T : class
{
    public T? Item;
    public long Sequence;
}
