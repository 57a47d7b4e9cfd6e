namespace AotProxy.Threading;

// A bounded stack of idle objects, one per pooled type (the async method boxes, ProxyRequest, a
// JSON answer's usage scanner): TryRent pops one (null: none idle, the caller makes one), Return
// pushes one back unless `capacity` are idle already. One lock, held for a push or a pop; the caller
// resets an object before it returns it, so an idle one keeps nothing alive.
internal sealed class IdlePool<T>(int capacity)
    where T : class
{
    private readonly Lock _lock = new();
    private readonly T?[] _idle = new T?[capacity];
    private int _count;

    // Idle now (a test's view of the pool).
    public int Count => Volatile.Read(ref _count);

    public T? TryRent()
    {
        lock (_lock)
        {
            if (_count == 0)
            {
                return null;
            }

            var item = _idle[--_count];
            _idle[_count] = null;
            return item;
        }
    }

    public void Return(T item)
    {
        lock (_lock)
        {
            if (_count < _idle.Length)
            {
                _idle[_count++] = item;
            }
        }
    }
}
