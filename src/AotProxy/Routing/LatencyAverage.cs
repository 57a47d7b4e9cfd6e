namespace AotProxy.Routing;

// An exponentially weighted moving average of seconds, lock-free: the double lives in a long
// and is replaced with compare-and-swap. 0 means "no sample yet".
internal sealed class LatencyAverage
{
    private long _bits;

    public double Seconds => BitConverter.Int64BitsToDouble(Volatile.Read(ref _bits));

    public void Add(double seconds, double learningRate)
    {
        if (!(seconds >= 0) || double.IsInfinity(seconds))
        {
            return;
        }

        while (true)
        {
            var seen = Volatile.Read(ref _bits);
            var current = BitConverter.Int64BitsToDouble(seen);
            var next = current == 0 ? seconds : current + (learningRate * (seconds - current));
            if (Interlocked.CompareExchange(ref _bits, BitConverter.DoubleToInt64Bits(next), seen) == seen)
            {
                return;
            }
        }
    }
}
