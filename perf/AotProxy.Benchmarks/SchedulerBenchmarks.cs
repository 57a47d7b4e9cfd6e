using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// The admit stage's cost per request, per scheduler policy, on one model pool, when a slot is
// free and nobody waits (the common case below saturation): admit, then release the lease.
// Expected: 0 B. A queued request's handoff (ring, waiter, grant) is AdmissionHandoffBenchmarks;
// the thread-pool hop of its continuation comes on top, as for any awaited I/O.
// FastPathWithWorkerSlot is the same with the grant's worker slot (issue 14): taken on the
// worker with the most room of 4, and given back, as the gateway does; FastPath is its baseline.
[MemoryDiagnoser]
public class SchedulerBenchmarks
{
    private static readonly Usage Settled = new(PromptTokens: 450, CompletionTokens: 20);

    private readonly CancellationTokenSource _requestAborted = new();
    private readonly StreamedCharge _streamed = new();
    private ModelAdmission _model = null!;
    private ModelAdmission _withWorkers = null!;
    private AdmissionRequest _request;

    [Params(SchedulerPolicyNames.FairShare, SchedulerPolicyNames.Priority, SchedulerPolicyNames.Bucket)]
    public string Policy { get; set; } = SchedulerPolicyNames.FairShare;

    [GlobalSetup]
    public void Setup()
    {
        var scheduler = new SchedulerModel(Policy, 1024, 1.0, 2.0, 2.0, SchedulerModel.GeometricShares(10));
        var classModel = new ClassModel("interactive", 0, 1, TimeSpan.FromSeconds(30), 1.0, 0, 1, Strict: false);
        var tenant = new TenantModel("acme", "interactive", 1, [], ["*"], 0, 0, 0);
        _model = new ModelAdmission("m", scheduler, new WaiterPool(TimeProvider.System, 64), TimeProvider.System);
        _model.Apply(64);
        _request = new AdmissionRequest(tenant, classModel, 0, 500);
        var workers = Enumerable.Range(0, 4).Select(i => Snapshots.Worker($"gpu-{i}", $"http://10.0.0.{i + 1}:8000/", "m")).ToArray();
        var snapshot = Snapshots.Create(workers, scheduler: scheduler);
        var pool = new WorkerRegistry(TimeProvider.System).Build(snapshot, WorkerSet.Empty).Pools["m"];
        var router = new Router(TimeProvider.System, new Random(1), NullLogger.Instance);
        _withWorkers = new ModelAdmission("m", scheduler, new WaiterPool(TimeProvider.System, 64), TimeProvider.System, router);
        _withWorkers.Apply(pool.Capacity(snapshot), pool, snapshot);
        if (FastPath() != (int)AdmissionDecision.Admitted || FastPathWithWorkerSlot() != (int)AdmissionDecision.Admitted)
        {
            throw new InvalidOperationException("the fast path does not admit");
        }
    }

    [Benchmark(Baseline = true)]
    public int FastPath() => AdmitAndRelease(_model, _request);

    [Benchmark]
    public int FastPathWithWorkerSlot() => AdmitAndRelease(_withWorkers, _request);

    private int AdmitAndRelease(ModelAdmission model, in AdmissionRequest request)
    {
        var result = Admit(model, request);
        var slot = result.Slot;
        slot.Release();
        result.Lease.Release(null);
        return (int)result.Decision;
    }

    // Inlined: the figures stay comparable with runs from before this helper.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private AdmissionResult Admit(ModelAdmission model, in AdmissionRequest request)
    {
        var pending = model.AdmitAsync(request, _requestAborted.Token);
        if (!pending.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("the fast path queued");
        }

        return pending.Result;
    }

    // The same, released with usage below the estimate of 500 prompt tokens (issue 14): the
    // settlement refunds the difference on the tenant's and the class's counters.
    [Benchmark]
    public int FastPathSettled()
    {
        var result = Admit(_model, _request);
        result.Lease.Release(Settled);
        return (int)result.Decision;
    }

    // FastPathSettled for a stream (issue 20): its 20 completion tokens relayed as 20 content
    // chunks, each charged to the tenant's and the class's counters as the forwarder does
    // (StreamedCharge, one per pooled request), then settled to the usage less those chunks.
    [Benchmark]
    public int FastPathStreamed()
    {
        var result = Admit(_model, _request);
        result.Lease.StartStream(_streamed);
        for (var chunk = 0; chunk < Settled.CompletionTokens; chunk++)
        {
            _streamed.Charge(1);
        }

        result.Lease.Release(Settled, _streamed.Chunks);
        _streamed.End();
        return (int)result.Decision;
    }
}
