namespace AotProxy.Cluster;

// This replica's lease on one worker's slots (docs/CLUSTER.md, "Leased slots"): leased, its part
// in the store (the field of aotproxy:res:{replica} that is summed into the worker's running), and
// used, the requests here that hold one. A request takes a leased slot here with no Redis call
// while used < leased; a grant adds a block. Both numbers in one long (leased high, used low), so
// a take, a release and a give-back are each one compare-and-swap that sees both as they are.
// Given back on time, not on every fall: a release keeps the lease unless another replica may wait
// for the worker ("wanted", until the store's want_until: then all unused goes back at once); the
// heartbeat trims it to the peak use since the previous heartbeat (all unused when no slot was
// taken since). least_queue swings a replica's use of one worker between ~2 and max_concurrency
// (perf/cluster.sh case 5): a give-back on each fall cost a grant on the next rise, ~one script
// per request.
internal sealed class SlotLease
{
    private long _counts;
    private long _wantedUntil;
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
    // while the worker is wanted elsewhere, never more than max_concurrency.
    public int Want(int max, long now) => IsWanted(now) ? 1 : Math.Clamp(Used, 1, Math.Max(1, max));

    // A request here gave its slot back: the slots to give back to the store with it (0: kept;
    // all unused while the worker is wanted elsewhere).
    public int Release(long now)
    {
        if (!IsWanted(now))
        {
            Interlocked.Decrement(ref _counts); // used > 0: the low half never borrows
            return 0;
        }

        var counts = Volatile.Read(ref _counts);
        while (true)
        {
            var used = (int)counts - 1;
            var leased = (int)(counts >> 32);
            var found = Interlocked.CompareExchange(ref _counts, Pack(used, used), counts);
            if (found == counts)
            {
                return leased - used;
            }

            counts = found;
        }
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

    // Another replica waits for the worker until `until` (a timestamp of the gateway's clock).
    public void WantedUntil(long until) => RaiseTo(ref _wantedUntil, until);

    public bool IsWanted(long now) => now < Volatile.Read(ref _wantedUntil);

    // Was no slot taken since the last heartbeat? (And it asks again from now.)
    private bool Idle() => Interlocked.Exchange(ref _taken, 0) == 0;

    // Written only when it changes: a take in the steady state reads the lines, never dirties them.
    private void Taken(int used)
    {
        if (Volatile.Read(ref _taken) == 0)
        {
            Volatile.Write(ref _taken, 1);
        }

        RaiseTo(ref _peak, used);
    }

    // target = max(target, value), written only when value is larger.
    private static void RaiseTo(ref long target, long value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var found = Interlocked.CompareExchange(ref target, value, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    private static long Pack(int leased, int used) => ((long)leased << 32) | (uint)used;
}
