namespace AotProxy.Simulator;

// vLLM's automatic prefix caching, reduced to what shows from outside: the set of recently
// computed prompt blocks, keyed by chained block hash, evicted least-recently-used. vLLM keeps a
// freed block's contents until the block is reused; bounding the set at NumGpuBlocks approximates
// that. Not thread-safe: the engine calls it under its lock.
internal sealed class PrefixCache(int capacity)
{
    private readonly Dictionary<ulong, LinkedListNode<ulong>> _blocks = new(Math.Min(capacity, 4096));
    private readonly LinkedList<ulong> _lru = new();

    public int Count => _blocks.Count;

    // Leading blocks already cached; touching them keeps a hot system prompt resident. They are
    // touched last block first, so that the first block ends up the most recent: vLLM frees a
    // request's blocks in reverse order, so a prompt's tail is evicted before its head and a
    // partly evicted prefix still hits its leading blocks (evicting block 0 first would lose them all).
    public int Match(ulong[] blockHashes)
    {
        var hits = 0;
        while (hits < blockHashes.Length && _blocks.ContainsKey(blockHashes[hits]))
        {
            hits++;
        }

        for (var i = hits - 1; i >= 0; i--)
        {
            var node = _blocks[blockHashes[i]];
            _lru.Remove(node);
            _lru.AddFirst(node);
        }

        return hits;
    }

    public void Insert(ulong blockHash)
    {
        if (_blocks.TryGetValue(blockHash, out var existing))
        {
            _lru.Remove(existing);
            _lru.AddFirst(existing);
            return;
        }

        if (_blocks.Count >= capacity && _lru.Last is { } oldest)
        {
            _lru.RemoveLast();
            _blocks.Remove(oldest.Value);
        }

        _blocks[blockHash] = _lru.AddFirst(blockHash);
    }
}
