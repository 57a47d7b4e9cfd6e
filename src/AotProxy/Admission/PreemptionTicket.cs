using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using AotProxy.Configuration;

namespace AotProxy.Admission;

// One request's standing for preemption before its first byte ([[classes]] preemptible). One per
// pooled ProxyRequest, reused: no object per request. A single state decides the race between
// the forwarder's first byte and the dispatcher's preemption, each a CAS from Running: whichever
// wins, the other sees it, so a request that has started streaming is never preempted, and a
// preempted one relays nothing.
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "A CancellationTokenSource without a timer holds nothing to dispose; a cancelled one is dropped, as a cancel queued for it may still come.")]
internal sealed class PreemptionTicket
{
    private const int Idle = 0;      // not preemptible (its class is not, or it was preempted once)
    private const int Running = 1;   // admitted, nothing relayed yet: preemptible
    private const int Started = 2;   // its worker's body began to reach the client
    private const int Preempted = 3; // its slot went to a more important waiter: it waits again
    private const int StatusMask = 3;
    private const int FleetFlag = 4; // preempted for a want of the fleet's (ForFleet)
    private const int GenerationStep = 8;

    // generation << 3 | fleet flag | status. The generation moves on at each Arm: the dispatcher preempts the
    // use it saw armed, never the next request that reuses the pooled ticket.
    private int _state;
    private CancellationTokenSource _cancel = new();

    // Cancels the current attempt upstream when the request is preempted.
    public CancellationToken Token => _cancel.Token;

    public bool IsArmed => Status(State) == Running;

    public bool IsPreempted => Status(State) == Preempted;

    // What TryPreempt takes: read it, check IsArmedState, then preempt that use only.
    public int State => Volatile.Read(ref _state);

    // At most once per request: once preempted, it is not armed again.
    public bool WasPreempted { get; private set; }

    // Its class's priority when admitted: only a waiter of a more important one preempts it.
    public int ClassPriority { get; private set; }

    // Its class account in the pool, which counts its preemption.
    public FairShareAccount? Class { get; private set; }

    // Under the bucket policy: the bucket its slot is counted in, and its class (whose buckets
    // those are), for BucketPolicy.MayTake; SlotBook.Unbucketed and null under the others.
    public int SlotBucket { get; private set; } = SlotBook.Unbucketed;

    public ClassModel? ClassModel { get; private set; }

    // With [cluster]: the worker whose slot its attempt holds fleet-wide (a Shared grant), which
    // another replica's want on that worker may take (SharedWorkerSlots); null before it has one.
    public string? FleetWorker { get; private set; }

    // Preempted for a want of another replica's (or of a request waiting here for the worker's
    // slot fleet-wide): its worker slot goes back to the store for that want, not to a waiter here.
    public bool ForFleet => (State & FleetFlag) != 0;

    // Its cell in ModelAdmission's table of preemptible requests; -1: in none.
    internal int Cell { get; set; } = -1;

    public void Arm(int classPriority, FairShareAccount classAccount, int slotBucket = SlotBook.Unbucketed, ClassModel? classModel = null)
    {
        ClassPriority = classPriority;
        Class = classAccount;
        SlotBucket = slotBucket;
        ClassModel = classModel;
        Volatile.Write(ref _state, unchecked((_state & ~(StatusMask | FleetFlag)) + GenerationStep) | Running);
    }

    public static bool IsArmedState(int state) => Status(state) == Running;

    // The priority of the least important preemptible class, -1 when none is: a request of a more
    // important class may preempt (with [cluster], on any replica).
    public static int LeastPreemptible(ImmutableArray<ClassModel> classes)
    {
        var least = -1;
        foreach (var classModel in classes)
        {
            if (classModel.Preemptible && classModel.Priority > least)
            {
                least = classModel.Priority;
            }
        }

        return least;
    }

    // The forwarder, at the first read of the worker's body, before anything of it is written to
    // the client: Running -> Started. False only when the dispatcher preempted it first.
    public bool TryStart()
    {
        var state = State;
        if (Status(state) == Running && Interlocked.CompareExchange(ref _state, (state & ~StatusMask) | Started, state) == state)
        {
            return true;
        }

        return Status(State) != Preempted; // a failed CAS: only a preemption moves it meanwhile
    }

    // The dispatcher: the use it saw armed (`armed`, a State), Running -> Preempted, then the attempt
    // is cancelled upstream. False when it has started, ended, or the ticket serves another request now.
    // forFleet: for a want of the fleet's (ForFleet).
    public bool TryPreempt(int armed, bool forFleet = false)
    {
        if (!IsArmedState(armed) || Interlocked.CompareExchange(ref _state, (armed & ~StatusMask) | Preempted | (forFleet ? FleetFlag : 0), armed) != armed)
        {
            return false;
        }

        WasPreempted = true;
        // Off the dispatcher's thread: the attempt's cancellation runs its callbacks, and those
        // must not run the request's continuations inside the dispatcher.
        ThreadPool.UnsafeQueueUserWorkItem(static source => source.Cancel(), _cancel, preferLocal: false);
        return true;
    }

    // The forwarding stage: its attempt holds a slot of `worker` fleet-wide (null: no longer).
    public void OnFleetSlot(string? worker) => FleetWorker = worker;

    // The forwarding stage, after its attempts: true when the request was preempted (also between
    // attempts); otherwise it is no longer preemptible.
    public bool Finish()
    {
        var state = State;
        while (Status(state) is Running or Started)
        {
            var found = Interlocked.CompareExchange(ref _state, (state & ~StatusMask) | Idle, state);
            if (found == state)
            {
                return false;
            }

            state = found;
        }

        return Status(state) == Preempted;
    }

    // Requeued after a preemption: not preemptible again, and its next attempt is not cancelled.
    // A new source (only after a preemption): the cancel queued for the old one may still come.
    public void Requeued()
    {
        FleetWorker = null;
        Volatile.Write(ref _state, (State & ~StatusMask) | Idle);
        _cancel = new CancellationTokenSource();
    }

    // The pooled request's next use.
    public void Reset()
    {
        Volatile.Write(ref _state, (State & ~StatusMask) | Idle);
        if (WasPreempted || !_cancel.TryReset())
        {
            _cancel = new CancellationTokenSource();
        }

        WasPreempted = false;
        FleetWorker = null;
        Class = null;
        ClassModel = null;
        Cell = -1;
    }

    private static int Status(int state) => state & StatusMask;
}
