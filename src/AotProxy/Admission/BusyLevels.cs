namespace AotProxy.Admission;

// The queue levels of a model pool that have waiters, lowest index (highest priority) first;
// a struct enumerator, so a dispatch step allocates nothing.
internal struct BusyLevels(QueueLevel?[] levels, int count)
{
    private int _index = -1;

    public readonly BusyLevels GetEnumerator() => this;

    public readonly QueueLevel Current => levels[_index]!;

    public bool MoveNext()
    {
        while (++_index < count)
        {
            if (levels[_index] is { Waiting: > 0 })
            {
                return true;
            }
        }

        return false;
    }
}
