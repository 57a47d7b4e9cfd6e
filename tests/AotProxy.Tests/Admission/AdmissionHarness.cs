using System.Collections.Immutable;
using AotProxy.Admission;
using AotProxy.Configuration;

namespace AotProxy.Tests.Admission;

// One model pool's admission on a manual clock, with tenants and classes made up per test.
internal sealed class AdmissionHarness
{
    public AdmissionHarness(
        string policy = SchedulerPolicyNames.FairShare, int capacity = 1, int queueCapacity = 1024, ImmutableArray<double> shares = default, double agingFactor = 2.0,
        double holdback = 0, ImmutableArray<int> bands = default, ProtectionModel? protection = null, double lookahead = 0,
        TimeProvider? time = null)
    {
        Clock = time ?? new FakeTimeProvider();
        Scheduler = new SchedulerModel(policy, queueCapacity, 1.0, 2.0, agingFactor, shares.IsDefault ? SchedulerModel.GeometricShares(10) : shares, Lookahead: lookahead)
        {
            Holdback = holdback,
            Bands = bands.IsDefault ? [] : bands,
            Protection = protection ?? ProtectionModel.Off,
        };
        Waiters = new WaiterPool(Clock, 64);
        Model = new ModelAdmission("m", Scheduler, Waiters, Clock);
        Model.Apply(capacity);
    }

    // What the pool runs on: a FakeTimeProvider unless the test gave a clock of its own (a TimerClock).
    public TimeProvider Clock { get; }

    // The default clock, moved by hand.
    public FakeTimeProvider Time => (FakeTimeProvider)Clock;

    public WaiterPool Waiters { get; }

    public SchedulerModel Scheduler { get; }

    public ModelAdmission Model { get; }

    public static ClassModel Class(string name = "default", int priority = 0, int weight = 1, double maxUtilization = 1.0, int firstBucket = 0, int lastBucket = 0, bool strict = false, TimeSpan? maxQueueWait = null) =>
        new(name, priority, weight, maxQueueWait ?? TimeSpan.FromSeconds(30), maxUtilization, firstBucket, lastBucket, strict);

    public static TenantModel Tenant(string name, ClassModel? classModel = null, int weight = 1) =>
        new(name, (classModel ?? Class()).Name, weight, [], ["*"], 0, 0, 0);

    // As a Task, so that a test may look at it more than once (a ValueTask is consumed once).
    public Task<AdmissionResult> Admit(TenantModel tenant, ClassModel classModel, int? priority = null, long promptTokens = 100, long maxTokens = 0, CancellationToken cancellationToken = default) =>
        Model.AdmitAsync(new AdmissionRequest(tenant, classModel, priority ?? classModel.Priority, promptTokens, maxTokens), cancellationToken).AsTask();

    // Waits for a queued admission to end (grants complete asynchronously), bounded in time.
    public static Task<AdmissionResult> Settle(Task<AdmissionResult> pending) => pending.WaitAsync(TimeSpan.FromSeconds(10));
}
