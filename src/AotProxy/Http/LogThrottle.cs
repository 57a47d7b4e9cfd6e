namespace AotProxy.Http;

// At most one log line per interval for an event a client can cause at any rate. The events in
// between are counted, and the next line says how many it stands for. Lock-free: one CAS decides
// which caller of an interval logs.
internal sealed class LogThrottle(TimeSpan interval, TimeProvider time)
{
    private long _last = long.MinValue; // the timestamp of the last line; MinValue: none yet
    private long _suppressed;

    // True: log now; suppressed is how many events since the previous line were not logged.
    public bool TryEnter(out long suppressed)
    {
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _last);
        if ((last == long.MinValue || time.GetElapsedTime(last, now) >= interval)
            && Interlocked.CompareExchange(ref _last, now, last) == last)
        {
            suppressed = Interlocked.Exchange(ref _suppressed, 0);
            return true;
        }

        Interlocked.Increment(ref _suppressed);
        suppressed = 0;
        return false;
    }
}
