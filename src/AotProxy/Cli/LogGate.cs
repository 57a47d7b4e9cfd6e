namespace AotProxy.Cli;

// Lets one log line through per interval and drops the rest, for a message any client can cause
// at will: Kestrel warns once per connection refused at server.max_connections, and a flood of
// connections must not become a flood of log lines (10,000 refused per second would be ~2 MB/s).
internal sealed class LogGate(TimeSpan interval, TimeProvider time)
{
    private readonly long _interval = (long)(interval.TotalSeconds * time.TimestampFrequency);
    private long _next = long.MinValue;

    public bool TryPass()
    {
        var now = time.GetTimestamp();
        var next = Volatile.Read(ref _next);
        return now >= next && Interlocked.CompareExchange(ref _next, now + _interval, next) == next;
    }
}
