using AotProxy.Configuration;

namespace AotProxy.Caching;

// The exact response cache's store: entries by key, in least-recently-used order, bounded by
// [response_cache] max_bytes (the oldest go first) and ttl (an entry older than it is never
// served, and goes at its next lookup or when it reaches the LRU's end). One short lock around
// a dictionary lookup and a few links: a hit's replay, the long part, runs outside it.
internal sealed class ResponseCache(TimeProvider time)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<UInt128, CachedResponse> _entries = [];
    private CachedResponse? _newest;
    private CachedResponse? _oldest;
    private long _bytes;
    private ResponseCacheModel _settings = ResponseCacheModel.Default;

    public long Bytes => Volatile.Read(ref _bytes);

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    // A snapshot's bounds, applied by GatewayState at startup and on each reload (the same
    // settings again: nothing to do): a reload that shrinks max_bytes evicts down to it, one that
    // turns the cache off empties it.
    public void Apply(ResponseCacheModel settings)
    {
        if (ReferenceEquals(settings, Volatile.Read(ref _settings)))
        {
            return;
        }

        lock (_lock)
        {
            _settings = settings;
            Trim(settings.Enabled ? settings.MaxBytes : 0);
        }
    }

    // The entry to answer with, now the most recently used; null: none, or expired (removed).
    public CachedResponse? Find(UInt128 key)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var entry))
            {
                return null;
            }

            if (Expired(entry, time.GetTimestamp()))
            {
                Remove(entry);
                return null;
            }

            Unlink(entry);
            LinkNewest(entry);
            return entry;
        }
    }

    // False: larger than an eighth of max_bytes, not stored. An entry under the same key (two
    // misses of one request at once) is replaced.
    public bool Add(CachedResponse entry)
    {
        lock (_lock)
        {
            var settings = _settings;
            if (!settings.Enabled || entry.Bytes > settings.MaxEntryBytes)
            {
                return false;
            }

            if (_entries.Remove(entry.Key, out var previous))
            {
                Unlink(previous);
                _bytes -= previous.Bytes;
            }

            _entries.Add(entry.Key, entry);
            LinkNewest(entry);
            _bytes += entry.Bytes;
            var now = time.GetTimestamp();
            while (_oldest is { } oldest && oldest != entry && Expired(oldest, now))
            {
                Remove(oldest);
            }

            Trim(settings.MaxBytes);
            return true;
        }
    }

    private bool Expired(CachedResponse entry, long now) => time.GetElapsedTime(entry.Stored, now) >= _settings.Ttl;

    private void Trim(long maxBytes)
    {
        while (_bytes > maxBytes && _oldest is { } oldest)
        {
            Remove(oldest);
        }
    }

    private void Remove(CachedResponse entry)
    {
        _entries.Remove(entry.Key);
        Unlink(entry);
        _bytes -= entry.Bytes;
    }

    private void LinkNewest(CachedResponse entry)
    {
        entry.Older = _newest;
        entry.Newer = null;
        if (_newest is not null)
        {
            _newest.Newer = entry;
        }

        _newest = entry;
        _oldest ??= entry;
    }

    private void Unlink(CachedResponse entry)
    {
        if (entry.Newer is not null)
        {
            entry.Newer.Older = entry.Older;
        }
        else if (_newest == entry)
        {
            _newest = entry.Older;
        }

        if (entry.Older is not null)
        {
            entry.Older.Newer = entry.Newer;
        }
        else if (_oldest == entry)
        {
            _oldest = entry.Newer;
        }

        entry.Newer = null;
        entry.Older = null;
    }
}
