using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// The limit stage's decision on one thread (uncontended): a token-bucket take, a take from a
// MinuteLimit (the bucket and the sliding window: what a tenant's RPM or TPM asks), and the whole
// check a request of a tenant with rpm, tpm and max_in_flight passes (lookup by name, in-flight
// count, RPM token, TPM reservation) with its settlement. Expected: <= 50 ns for the take, 0 B.
// The limits are a billion per minute, so that no run drains them (about 10 s at ~30 ns a take
// leave ~700 million of the billion) and every case measures an allowed request.
[MemoryDiagnoser]
public class TokenBucketBenchmarks
{
    private static readonly Usage Used = new(500, 524);

    private TokenBucket _bucket = null!;
    private MinuteLimit _minute = null!;
    private TenantLimits _limits = null!;
    private TenantModel _tenant = null!;

    [GlobalSetup]
    public void Setup()
    {
        _bucket = new TokenBucket(TokenBucket.MaxCapacity, TimeProvider.System);
        _minute = new MinuteLimit(TokenBucket.MaxCapacity, TimeProvider.System);
        var snapshot = ConfigLoader.Parse($"[[tenants]]\nname = \"acme\"\nrpm = {TokenBucket.MaxCapacity}\ntpm = {TokenBucket.MaxCapacity}\nmax_in_flight = 64\n", "<bench>", 1, TimeProvider.System).Snapshot!;
        _tenant = snapshot.Tenants[0];
        _limits = new TenantLimits(TimeProvider.System);
        _limits.Apply(snapshot);
        if (!TryTake() || !MinuteTryTake() || !CheckAndSettle())
        {
            throw new InvalidOperationException("the bucket refuses");
        }
    }

    // What the take pays for its lazy refill: one read of the injected clock (TimeProvider.System:
    // Stopwatch.GetTimestamp, clock_gettime through the vDSO; kvm-clock on this machine). Declared
    // first because cases run in declaration order and the first one of a run took the noise of
    // the build that `dotnet run` had just finished (perf/RESULTS.md, Limits).
    [Benchmark]
    public long ClockRead() => TimeProvider.System.GetTimestamp();

    [Benchmark]
    public bool TryTake() => _bucket.TryTake(1);

    [Benchmark]
    public bool MinuteTryTake() => _minute.TryTake(1, TimeProvider.System.GetTimestamp());

    [Benchmark]
    public bool CheckAndSettle()
    {
        var result = _limits.TryAcquire(_tenant, 1024);
        result.Lease.Settle(admitted: true, Used);
        return result.IsAllowed;
    }
}
