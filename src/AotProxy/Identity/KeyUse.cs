namespace AotProxy.Identity;

// When an issued key was last used, in Unix seconds, kept in memory and shared by every snapshot
// that holds the key (the tenant directory keeps one per key id). Written only when its second
// changes: a key used 10,000 times a second writes the shared line once a second, not 10,000
// times. The directory flushes what changed to the store off the hot path.
internal sealed class KeyUse(long lastUsedSecond)
{
    private long _lastUsed = lastUsedSecond;
    private long _flushed = lastUsedSecond;

    public long LastUsedSecond => Volatile.Read(ref _lastUsed);

    public void Touch(long unixSecond)
    {
        if (Volatile.Read(ref _lastUsed) < unixSecond)
        {
            Volatile.Write(ref _lastUsed, unixSecond);
        }
    }

    // The second to write to the store, or 0 when nothing changed since the last flush.
    public long TakeUnflushed()
    {
        var last = LastUsedSecond;
        if (last == _flushed)
        {
            return 0;
        }

        _flushed = last;
        return last;
    }
}
