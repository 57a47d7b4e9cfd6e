using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Routing;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// Per-class protection's cost on the request path (issue 20): the admit fast path (a free slot,
// nobody waiting) and the attempt's outcome recorded in the pool's window, as the forwarding stage
// does, with protection off (no class has a tolerance: the baseline) and on (three classes with
// tolerances, the window healthy, so nothing is shed). Expected: 0 B either way; on costs a clock
// read per admission and per attempt, a few Interlocked adds, and a judgement per bucket.
[MemoryDiagnoser]
public class ProtectionBenchmarks
{
    private static readonly TimeSpan FirstToken = TimeSpan.FromMilliseconds(80);

    private readonly CancellationTokenSource _requestAborted = new();
    private ModelAdmission _off = null!;
    private ModelAdmission _on = null!;
    private AdmissionRequest _request;

    [GlobalSetup]
    public void Setup()
    {
        var enterprise = new ClassModel("enterprise", 0, 70, TimeSpan.FromSeconds(30), 1.0, 0, 1, Strict: false) { MaxErrorRate = 0.01, TtftTolerance = 2.0 };
        var premium = enterprise with { Name = "premium", Priority = 1, MaxErrorRate = 0.05, TtftTolerance = 5.0 };
        var free = enterprise with { Name = "free", Priority = 2, MaxErrorRate = 0.2, TtftTolerance = 10.0 };
        var scheduler = new SchedulerModel(SchedulerPolicyNames.FairShare, 1024, 1.0, 2.0, 2.0, SchedulerModel.GeometricShares(10));
        var protection = new ProtectionModel(TimeSpan.FromSeconds(30), 20, []).For([enterprise, premium, free]);
        _off = new ModelAdmission("m", scheduler, new WaiterPool(TimeProvider.System, 64), TimeProvider.System);
        _on = new ModelAdmission("m", scheduler with { Protection = protection }, new WaiterPool(TimeProvider.System, 64), TimeProvider.System);
        _off.Apply(64);
        _on.Apply(64);
        _request = new AdmissionRequest(new TenantModel("acme", "free", 1, [], ["*"], 0, 0, 0), free, 2, 500);
        if (!_on.Protection.State.Model.IsOn || _off.Protection.State.Model.IsOn || Off() != (int)AdmissionDecision.Admitted || On() != (int)AdmissionDecision.Admitted)
        {
            throw new InvalidOperationException("protection is not as the benchmark needs it");
        }
    }

    [Benchmark(Baseline = true)]
    public int Off() => AdmitAttemptRelease(_off);

    [Benchmark]
    public int On() => AdmitAttemptRelease(_on);

    private int AdmitAttemptRelease(ModelAdmission model)
    {
        var pending = model.AdmitAsync(_request, _requestAborted.Token);
        if (!pending.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("the fast path queued");
        }

        var result = pending.Result;
        result.Lease.Observe(AttemptOutcome.Succeeded, FirstToken);
        result.Lease.Release(null);
        return (int)result.Decision;
    }
}
