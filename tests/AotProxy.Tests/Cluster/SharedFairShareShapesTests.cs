using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using StackExchange.Redis;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Cluster;

// Issue 16, case 2 (perf/cluster.sh --case 2) in a deterministic simulation on one real
// redis-server: three replicas' admission for one model (ModelAdmission with its SharedFairShare),
// on one manual clock, flushed every 50 ms of it. t70 (weight 70) reaches only replica A, t20 and
// t10 only B and C; all three stay backlogged (each keeps `Queued` requests waiting on each of its
// replicas). As in the gateway, a replica's grant takes a slot of its own book (the fleet's
// capacity), then its turn on the fleet's workers (AdmissionLease.FleetTurnAsync, as
// ForwardingStage asks it), then waits for one of the fleet's `Slots` worker slots
// (SharedWorkerSlots): a slot that comes free goes to a waiter of the replica that released it
// first (its next request asks Redis first), else round robin; a request that waited `GateWait`
// in all ends without usage (the gateway's 503 after max_queue_wait, or the client gone). Served
// weighted tokens (prompt + 2 x completion) of the requests completed after `Warmup` must be
// within +-5 % of 70/20/10 of the total (relative, as perf/cluster_report.py judges it). With
// main's fair share (ff5b020: no turns, grants racing for the slots, a request that never ran
// left charged): 50.0/33.3/16.7 % with one shape, 66.5/22.5/11.0 % with a shape per tenant.
public sealed class SharedFairShareShapesTests : IAsyncLifetime
{
    private const int Slots = 16;
    private const int Queued = 8;
    private const double Tolerance = 0.05;
    private static readonly TimeSpan Step = SharedFairShare.Interval;
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(40);
    private static readonly TimeSpan Run = TimeSpan.FromSeconds(200);
    private static readonly TimeSpan GateWait = TimeSpan.FromSeconds(10);

    private readonly List<ConnectionMultiplexer> _connections = [];
    private RedisServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    // One shape for all: 100 prompt tokens estimated exactly, 32 completion tokens, 3.2 s.
    [Fact]
    public Task OneRequestShape_ServedWeightedTokensFollow70_20_10() => Simulate(
        new Shape("t70", 70, Estimate: 100, Prompt: 100, Completion: 32, Seconds: 3.2),
        new Shape("t20", 20, Estimate: 100, Prompt: 100, Completion: 32, Seconds: 3.2),
        new Shape("t10", 10, Estimate: 100, Prompt: 100, Completion: 32, Seconds: 3.2));

    // perf/cluster.sh's mixed shapes: t70 long (1,000 prompt tokens, 64 out, 6.4 s), t20 short
    // (50, 16, 1.6 s; estimated at 80, as a short chat's JSON inflates it), t10 medium (250, 32,
    // 3.2 s; estimated at 200).
    [Fact]
    public Task AShapePerTenant_ServedWeightedTokensFollow70_20_10() => Simulate(
        new Shape("t70", 70, Estimate: 1000, Prompt: 1000, Completion: 64, Seconds: 6.4),
        new Shape("t20", 20, Estimate: 80, Prompt: 50, Completion: 16, Seconds: 1.6),
        new Shape("t10", 10, Estimate: 200, Prompt: 250, Completion: 32, Seconds: 3.2));

    private async Task Simulate(Shape t70, Shape t20, Shape t10)
    {
        var time = new FakeTimeProvider();
        var cls = Class(maxQueueWait: TimeSpan.FromDays(1));
        var replicas = new[] { await Replica("A", time, t70), await Replica("B", time, t20, t10), await Replica("C", time, t20, t10) };
        var gate = new Queue<(Sim Replica, Request Request, long Since)>[replicas.Length];
        for (var i = 0; i < gate.Length; i++)
        {
            gate[i] = new();
        }

        var running = new List<(Sim Replica, Request Request, long Until)>();
        var served = new Dictionary<string, double>(StringComparer.Ordinal);
        var free = Slots;
        var runningBy = new long[replicas.Length];
        var steps = 0L;
        var turnTimeouts = 0;
        var gateTimeouts = 0;
        var turnedBy = new Dictionary<string, int>();
        var doneBy = new Dictionary<string, int>();
        var turn = 0;
        var start = time.GetTimestamp();
        long Now() => time.GetTimestamp() - start;
        long Ticks(TimeSpan span) => (long)(span.TotalSeconds * time.TimestampFrequency);

        // Each replica has flushed once before the first request, as a gateway does in its first 50 ms.
        foreach (var replica in replicas)
        {
            await replica.Share.FlushAsync();
        }

        foreach (var replica in replicas)
        {
            foreach (var flow in replica.Flows)
            {
                for (var i = 0; i < Queued; i++)
                {
                    flow.Submit(replica.Model, cls);
                }
            }
        }

        // Grants ask for their turn on the fleet's workers at once (as ForwardingStage does), turns
        // given go to the gate, and every flow tops its queue up (which may grant at once: again).
        async Task Pump()
        {
            for (var round = 0; round < 3; round++)
            {
                for (var r = 0; r < replicas.Length; r++)
                {
                    foreach (var flow in replicas[r].Flows)
                    {
                        foreach (var granted in await flow.Collect(replicas[r].Model))
                        {
                            flow.Turn(granted, Now());
                        }

                        foreach (var (request, since, turned) in await flow.Turns(replicas[r].Share.Attach(replicas[r].Model)))
                        {
                            if (turned)
                            {
                                turnedBy[request.Flow.Shape.Tenant] = turnedBy.GetValueOrDefault(request.Flow.Shape.Tenant) + 1;
                                gate[r].Enqueue((replicas[r], request, since));
                            }
                            else
                            {
                                turnTimeouts++;
                                request.Lease.Release(null);
                            }
                        }

                        while (flow.Pending < Queued)
                        {
                            flow.Submit(replicas[r].Model, cls);
                        }
                    }
                }
            }
        }

        while (Now() < Ticks(Run))
        {
            await Pump();

            // Waiters that waited too long at the gate end without usage.
            for (var r = 0; r < replicas.Length; r++)
            {
                while (gate[r].TryPeek(out var head) && Now() - head.Since >= Ticks(GateWait))
                {
                    gate[r].Dequeue();
                    gateTimeouts++;
                    head.Request.Lease.LeftForSlot();
                    head.Request.Lease.Release(null);
                }
            }

            // Free slots to the gate's waiters, round robin over the replicas.
            for (var tries = 0; free > 0 && tries < replicas.Length; tries++)
            {
                var r = turn++ % replicas.Length;
                if (gate[r].TryDequeue(out var next))
                {
                    free--;
                    tries = -1;
                    next.Request.Lease.LeftForSlot();
                    running.Add((next.Replica, next.Request, Now() + Ticks(TimeSpan.FromSeconds(next.Request.Flow.Shape.Seconds))));
                }
            }

            time.Advance(Step);
            steps++;
            foreach (var (replica, _, _) in running)
            {
                runningBy[Array.IndexOf(replicas, replica)]++;
            }

            // Requests that ended: usage settles, and the releasing replica's gate waiter takes the slot.
            for (var i = running.Count - 1; i >= 0; i--)
            {
                var (replica, request, until) = running[i];
                if (until > Now())
                {
                    continue;
                }

                running.RemoveAt(i);
                var shape = request.Flow.Shape;
                request.Lease.Release(new Usage(shape.Prompt, shape.Completion));
                doneBy[shape.Tenant] = doneBy.GetValueOrDefault(shape.Tenant) + 1;
                if (Now() >= Ticks(Warmup))
                {
                    served[shape.Tenant] = served.GetValueOrDefault(shape.Tenant) + shape.Prompt + (2.0 * shape.Completion);
                }

                var r = Array.IndexOf(replicas, replica);
                if (gate[r].TryDequeue(out var next))
                {
                    next.Request.Lease.LeftForSlot();
                    running.Add((next.Replica, next.Request, Now() + Ticks(TimeSpan.FromSeconds(next.Request.Flow.Shape.Seconds))));
                }
                else
                {
                    free++;
                }
            }

            await Pump();
            foreach (var replica in replicas)
            {
                await replica.Share.FlushAsync();
            }
        }

        var total = served.Values.Sum();
        var report = string.Join(", ", new[] { t70, t20, t10 }.Select(s => $"{s.Tenant} {served.GetValueOrDefault(s.Tenant) / total:P1}"));
        var vtc = await _connections[0].GetDatabase().HashGetAllAsync("aotproxy:vtc:m");
        report += $" (running A/B/C {string.Join("/", runningBy.Select(n => (n / (double)steps).ToString("F1")))}, turn timeouts {turnTimeouts}, gate timeouts {gateTimeouts}, deferred {string.Join("/", replicas.Select(r => r.Share.Attach(r.Model).Deferred))}, counters {string.Join(" ", vtc.Select(e => $"{e.Name}={(long)e.Value / 1_000_000}"))}, turned {string.Join(" ", turnedBy)}, done {string.Join(" ", doneBy)}, local {string.Join(" ", replicas.SelectMany(r => r.Model.Tenants).Select(t => $"{t.Name}={t.Counter:F0}"))})";
        foreach (var shape in new[] { t70, t20, t10 })
        {
            var share = served.GetValueOrDefault(shape.Tenant) / total;
            var target = shape.Weight / 100.0;
            Assert.True(Math.Abs((share / target) - 1) <= Tolerance, $"served weighted tokens {report}; {shape.Tenant} should have {target:P0} +-5 %");
        }
    }

    private async Task<Sim> Replica(string name, FakeTimeProvider time, params Shape[] shapes)
    {
        var redis = await RedisConnections.ConnectAsync(_redis);
        _connections.Add(redis);
        var scheduler = new SchedulerModel(SchedulerPolicyNames.FairShare, 4096, 1.0, 2.0, 2.0, SchedulerModel.GeometricShares(10));
        var model = new ModelAdmission("m", scheduler, new WaiterPool(time, 64), time);
        model.Apply(Slots);
        var share = new SharedFairShare(() => redis, () => name, SharedFairShare.Interval, time);
        share.Attach(model);
        return new Sim(model, share, [.. shapes.Select(s => new Flow(s))]);
    }

    private sealed record Shape(string Tenant, int Weight, long Estimate, long Prompt, long Completion, double Seconds);

    private sealed record Sim(ModelAdmission Model, SharedFairShare Share, Flow[] Flows);

    private sealed record Request(Flow Flow, AdmissionLease Lease);

    // One tenant's requests on one replica: those submitted and not yet granted, those granted and
    // waiting for their turn, in order (a tenant's queue and its turns are FIFO).
    private sealed class Flow(Shape shape)
    {
        private readonly Queue<Task<AdmissionResult>> _pending = new();
        private readonly Queue<(Request Request, long Since, Task<bool> Turn)> _turns = new();
        private readonly TenantModel _tenant = Tenant(shape.Tenant, Class(), shape.Weight);

        public Shape Shape { get; } = shape;

        public int Pending => _pending.Count;

        public void Submit(ModelAdmission model, ClassModel cls) =>
            _pending.Enqueue(model.AdmitAsync(new AdmissionRequest(_tenant, cls, cls.Priority, Shape.Estimate), CancellationToken.None).AsTask());

        // The grants made since the last call: all submitted less those still queued (their
        // completion may run on another thread, so it is awaited, bounded).
        public async Task<List<Request>> Collect(ModelAdmission model)
        {
            var waiting = model.Tenants.FirstOrDefault(t => t.Name == Shape.Tenant)?.Waiting ?? 0;
            var granted = new List<Request>();
            while (_pending.Count > waiting)
            {
                var result = await _pending.Dequeue().WaitAsync(TimeSpan.FromSeconds(10));
                Assert.True(result.Lease.IsHeld, result.Decision.ToString());
                granted.Add(new Request(this, result.Lease));
            }

            return granted;
        }

        public void Turn(Request request, long since) =>
            _turns.Enqueue((request, since, request.Lease.FleetTurnAsync(GateWait, CancellationToken.None).AsTask()));

        // The turns given or timed out since the last call: all asked less those the fleet's
        // counters still hold back (SharedVtcTenant.Queued), with the lease to keep.
        public async Task<List<(Request Request, long Since, bool Turned)>> Turns(SharedVtc fleet)
        {
            var waiting = fleet.Tenant(Shape.Tenant).Queued;
            var done = new List<(Request, long, bool)>();
            while (_turns.Count > waiting)
            {
                var (request, since, turn) = _turns.Dequeue();
                var turned = await turn.WaitAsync(TimeSpan.FromSeconds(10));
                done.Add((turned ? request with { Lease = request.Lease.Turned } : request, since, turned));
            }

            return done;
        }
    }
}
