namespace AotProxy.Simulator;

// Flipped at runtime by tests (directly or through POST /sim/faults) while requests are in flight,
// so every field is read and written atomically. double and TimeSpan cannot be volatile: they
// live as 64-bit patterns behind Interlocked.
public sealed class SimulatorFaults
{
    private long _http500RateBits;
    private volatile bool _hang;
    private volatile int _resetAfterTokens = -1;
    private long _firstByteDelayTicks;
    private long _interTokenDelayTicks;
    private volatile bool _garbageMetrics;
    private volatile bool _missingMetrics;
    private volatile bool _unhealthyHealth;
    private long _speedFactorBits = BitConverter.DoubleToInt64Bits(1.0);

    public double Http500Rate
    {
        get => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _http500RateBits));
        set
        {
            if (!(value >= 0 && value <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "A rate between 0 and 1.");
            }

            Interlocked.Exchange(ref _http500RateBits, BitConverter.DoubleToInt64Bits(value));
        }
    }

    public bool Hang
    {
        get => _hang;
        set => _hang = value;
    }

    public int ResetAfterTokens
    {
        get => _resetAfterTokens;
        set => _resetAfterTokens = value < 0 ? -1 : value;
    }

    public TimeSpan FirstByteDelay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _firstByteDelayTicks));
        set => Interlocked.Exchange(ref _firstByteDelayTicks, Math.Max(0, value.Ticks));
    }

    public TimeSpan InterTokenDelay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _interTokenDelayTicks));
        set => Interlocked.Exchange(ref _interTokenDelayTicks, Math.Max(0, value.Ticks));
    }

    public bool GarbageMetrics
    {
        get => _garbageMetrics;
        set => _garbageMetrics = value;
    }

    public bool MissingMetrics
    {
        get => _missingMetrics;
        set => _missingMetrics = value;
    }

    public bool UnhealthyHealth
    {
        get => _unhealthyHealth;
        set => _unhealthyHealth = value;
    }

    // A runtime compute slowdown (or speed-up): every engine step, prefill and decode, costs
    // 1 / SpeedFactor times what it would (on top of SimulatorOptions.SpeedFactor). Unlike the
    // delays above, which add a fixed time whatever the load, it slows the engine itself, so a
    // request's TTFT grows with the work queued ahead of it, as on a GPU that runs slower.
    // The engine reads it at every step, so requests already running slow down too.
    public double SpeedFactor
    {
        get => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _speedFactorBits));
        set
        {
            if (!(value > 0) || double.IsInfinity(value))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "A positive, finite factor.");
            }

            Interlocked.Exchange(ref _speedFactorBits, BitConverter.DoubleToInt64Bits(value));
        }
    }

    public void Clear()
    {
        Http500Rate = 0;
        Hang = false;
        ResetAfterTokens = -1;
        FirstByteDelay = TimeSpan.Zero;
        InterTokenDelay = TimeSpan.Zero;
        GarbageMetrics = false;
        MissingMetrics = false;
        UnhealthyHealth = false;
        SpeedFactor = 1.0;
    }
}
