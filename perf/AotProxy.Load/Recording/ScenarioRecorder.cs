using System.Diagnostics;

namespace AotProxy.Load.Recording;

// Everything measured for one [[mix]] entry. Written concurrently by request completions (and
// by the scheduling thread, for lag and drops), so every counter is Interlocked; the report
// merges the entries' recorders into the scenario's total.
internal sealed class ScenarioRecorder
{
    // A send more than 1 ms after its intended time counts as late: a loaded 2-core box wakes a
    // sleeping thread within about 100 µs, so 1 ms means the runner itself fell behind.
    public static readonly long LateThresholdTicks = Stopwatch.Frequency / 1000;

    private const int StatusCodeSlots = 600;

    private readonly long[] _errors = new long[Enum.GetValues<ErrorKind>().Length];
    private readonly long[] _statusCodes = new long[StatusCodeSlots];
    private long _requests;
    private long _ok;
    private long _lateSends;
    private long _maxLagTicks;
    private long _promptTokens;
    private long _completionTokens;

    public Histogram Latency { get; } = new();

    public Histogram Ttft { get; } = new();

    public Histogram Itl { get; } = new();

    public long Requests => Volatile.Read(ref _requests);

    public long Ok => Volatile.Read(ref _ok);

    public long LateSends => Volatile.Read(ref _lateSends);

    public long MaxLagMicroseconds => TicksToMicroseconds(Volatile.Read(ref _maxLagTicks));

    public long PromptTokens => Volatile.Read(ref _promptTokens);

    public long CompletionTokens => Volatile.Read(ref _completionTokens);

    public long ErrorCount
    {
        get
        {
            long total = 0;
            for (var i = 0; i < _errors.Length; i++)
            {
                total += Volatile.Read(ref _errors[i]);
            }

            return total;
        }
    }

    public static long TicksToMicroseconds(long ticks) => ticks <= 0 ? 0 : (long)(ticks * (1_000_000.0 / Stopwatch.Frequency));

    // Every request the schedule produced, sent or dropped.
    public void Scheduled(long lagTicks)
    {
        Interlocked.Increment(ref _requests);
        if (lagTicks > LateThresholdTicks)
        {
            Interlocked.Increment(ref _lateSends);
        }

        Atomic.Max(ref _maxLagTicks, lagTicks);
    }

    public void Status(int code)
    {
        if (code is >= 0 and < StatusCodeSlots)
        {
            Interlocked.Increment(ref _statusCodes[code]);
        }
    }

    public void Error(ErrorKind kind) => Interlocked.Increment(ref _errors[(int)kind]);

    public void Succeeded(long latencyTicks, long ttftTicks, long promptTokens, long completionTokens)
    {
        Interlocked.Increment(ref _ok);
        Latency.Record(TicksToMicroseconds(latencyTicks));
        if (ttftTicks >= 0)
        {
            Ttft.Record(TicksToMicroseconds(ttftTicks));
        }

        if (promptTokens > 0)
        {
            Interlocked.Add(ref _promptTokens, promptTokens);
        }

        if (completionTokens > 0)
        {
            Interlocked.Add(ref _completionTokens, completionTokens);
        }
    }

    public void Add(ScenarioRecorder other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Interlocked.Add(ref _requests, other.Requests);
        Interlocked.Add(ref _ok, other.Ok);
        Interlocked.Add(ref _lateSends, other.LateSends);
        var lag = Volatile.Read(ref other._maxLagTicks);
        if (lag > _maxLagTicks)
        {
            _maxLagTicks = lag;
        }

        Interlocked.Add(ref _promptTokens, other.PromptTokens);
        Interlocked.Add(ref _completionTokens, other.CompletionTokens);
        for (var i = 0; i < _errors.Length; i++)
        {
            Interlocked.Add(ref _errors[i], Volatile.Read(ref other._errors[i]));
        }

        for (var i = 0; i < _statusCodes.Length; i++)
        {
            Interlocked.Add(ref _statusCodes[i], Volatile.Read(ref other._statusCodes[i]));
        }

        Latency.Add(other.Latency);
        Ttft.Add(other.Ttft);
        Itl.Add(other.Itl);
    }

    public SortedDictionary<string, long> Errors()
    {
        var result = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < _errors.Length; i++)
        {
            var count = Volatile.Read(ref _errors[i]);
            if (count > 0)
            {
                result[ErrorKinds.Name((ErrorKind)i)] = count;
            }
        }

        return result;
    }

    public SortedDictionary<string, long> StatusCodes()
    {
        var result = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < _statusCodes.Length; i++)
        {
            var count = Volatile.Read(ref _statusCodes[i]);
            if (count > 0)
            {
                result[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = count;
            }
        }

        return result;
    }
}
