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
    }
}
