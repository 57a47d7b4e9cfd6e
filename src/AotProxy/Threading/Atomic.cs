namespace AotProxy.Threading;

// Lock-free running maximum, for a value raised from many threads at once. Written only when the
// value is larger: a caller on the steady path reads the line and never dirties it.
internal static class Atomic
{
    public static void Max(ref long target, long value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var found = Interlocked.CompareExchange(ref target, value, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }
}
