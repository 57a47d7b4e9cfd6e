using AotProxy.Threading;

namespace AotProxy.Cluster;

// This replica's lease on one worker's slots (docs/CLUSTER.md, "Leased slots"): leased, its part
// in the store (the field of aotproxy:res:{replica} that is summed into the worker's running), and
// used, the requests here that hold one. A request takes a leased slot here with no Redis call
// while used < leased; a grant adds a block. Both numbers in one long (leased high, used low), so
// a take, a release and a give-back are each one compare-and-swap that sees both as they are.
// Given back on time, not on every fall: a release keeps the lease; the heartbeat trims it to the
// peak use since the previous heartbeat (all unused when no slot was taken since). least_queue
// swings a replica's use of one worker between ~2 and max_concurrency (perf/cluster.sh case 5): a
// give-back on each fall cost a grant on the next rise, ~one script per request.
// Owed: another replica refused a slot of the worker asks each holder for one ("want"): paid at
// once from the unused lease, else by the next release, until that replica is granted ("served")
// or a heartbeat passes. Before, a refusal made every holder give all its unused lease and each
// release back for a whole heartbeat: ~0.4-1.2 scripts per request in case 5.
internal sealed class SlotLease
{
    private long _counts;
    private int _owed;
    private long _owedUntil;
    private int _taken;
    private long _peak;

    public int Leased => (int)(Volatile.Read(ref _counts) >> 32);

    public int Used => (int)Volatile.Read(ref _counts);

    // One leased slot that no request here uses, if there is one.
    public bool TryUse()
    {
        var counts = Volatile.Read(ref _counts);
        while ((int)counts < (int)(counts >> 32))
        {
            var found = Interlocked.CompareExchange(ref _counts, counts + 1, counts);
            if (found == counts)
            {
                Taken((int)counts + 1);
                return true;
            }

            counts = found;
        }

        return false;
    }

    // A grant of `slots`, one of them for the request that asked.
    public void Granted(int slots) => Taken((int)Interlocked.Add(ref _counts, ((long)slots << 32) + 1));

    // How many slots a grant asks for: as many as are used (the block doubles while use grows), one
    // while this lease owes a slot to another replica, never more than max_concurrency.
    public int Want(int max, long now) => IsWanted(now) ? 1 : Math.Clamp(Used, 1, Math.Max(1, max));

    // A request here gave its slot back: the slots to give back to the store with it (0: kept; 1:
    // the slot paid what this lease owes).
    public int Release(long now)
    {
        if (IsWanted(now) && TryPay())
        {
            Interlocked.Add(ref _counts, -((1L << 32) + 1)); // used > 0 and leased >= used: no borrow
            return 1;
        }

        Interlocked.Decrement(ref _counts);
        return 0;
    }

    // The heartbeat: the slots above the peak use since the previous heartbeat (above what is used
    // when no slot was taken since) to give back to the store. The peak starts again from what is
    // used now; a take between the two reads may be missed, which trims one slot too many at the
    // next heartbeat: one grant more, never a slot in use given back.
    public int Trim()
    {
        var idle = Idle();
        var peak = Interlocked.Exchange(ref _peak, Used);
        var counts = Volatile.Read(ref _counts);
        while (true)
        {
            var used = (int)counts;
            var leased = (int)(counts >> 32);
            var keep = idle ? used : (int)Math.Max(peak, used);
            if (leased <= keep)
            {
                return 0;
            }

            var found = Interlocked.CompareExchange(ref _counts, Pack(keep, used), counts);
            if (found == counts)
            {
                return leased - keep;
            }

            counts = found;
        }
    }

    // A used slot leaves the lease with its request (it goes back to the store, not to the lease):
    // one compare-and-swap-free add, as used > 0 and leased >= used.
    public void GiveUp() => Interlocked.Add(ref _counts, -((1L << 32) + 1));

    // Every leased slot that no request uses: the slots to give back to the store.
    public int GiveBackUnused()
    {
        var counts = Volatile.Read(ref _counts);
        while (true)
        {
            var used = (int)counts;
            var back = (int)(counts >> 32) - used;
            if (back <= 0)
            {
                return 0;
            }

            var found = Interlocked.CompareExchange(ref _counts, Pack(used, used), counts);
            if (found == counts)
            {
                return back;
            }

            counts = found;
        }
    }

    // Another replica was refused a slot (its "want", or a heartbeat's read of it): one slot more
    // is owed until `until` (the gateway's clock; a debt past its time is forgotten first). Paid at
    // once when a leased slot is unused: the slots to give back to the store now (0 or 1).
    public int Wanted(long now, long until)
    {
        if (now >= Volatile.Read(ref _owedUntil))
        {
            Volatile.Write(ref _owed, 0);
        }

        Atomic.Max(ref _owedUntil, until);
        Interlocked.Increment(ref _owed);
        var counts = Volatile.Read(ref _counts);
        while ((int)(counts >> 32) > (int)counts && TryPay())
        {
            var found = Interlocked.CompareExchange(ref _counts, counts - (1L << 32), counts);
            if (found == counts)
            {
                return 1;
            }

            Interlocked.Increment(ref _owed); // not paid: owed still
            counts = found;
        }

        return 0;
    }

    // The replicas refused a slot were granted one: nothing is owed.
    public void Served() => Volatile.Write(ref _owed, 0);

    public bool IsWanted(long now) => Volatile.Read(ref _owed) > 0 && now < Volatile.Read(ref _owedUntil);

    // One owed slot counted as paid, if one is owed.
    private bool TryPay()
    {
        var owed = Volatile.Read(ref _owed);
        while (owed > 0)
        {
            var found = Interlocked.CompareExchange(ref _owed, owed - 1, owed);
            if (found == owed)
            {
                return true;
            }

            owed = found;
        }

        return false;
    }

    // Was no slot taken since the last heartbeat? (And it asks again from now.)
    private bool Idle() => Interlocked.Exchange(ref _taken, 0) == 0;

    // Written only when it changes: a take in the steady state reads the lines, never dirties them.
    private void Taken(int used)
    {
        if (Volatile.Read(ref _taken) == 0)
        {
            Volatile.Write(ref _taken, 1);
        }

        Atomic.Max(ref _peak, used);
    }

    private static long Pack(int leased, int used) => ((long)leased << 32) | (uint)used;
}
