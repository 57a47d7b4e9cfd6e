namespace AotProxy.Cluster;

// This replica's lease on one worker's slots (docs/CLUSTER.md, "Leased slots"): leased, its part
// in the store (the field of aotproxy:res:{replica} that is summed into the worker's running), and
// used, the requests here that hold one. A request takes a leased slot here with no Redis call
// while used < leased; a grant adds a block. Both numbers in one long (leased high, used low), so
// a take, a release and a give-back are each one compare-and-swap that sees both as they are.
// What a release keeps: nothing unused while another replica may wait for the worker ("wanted",
// until the store's wait_until), else at most max(1, used) unused (hysteresis: a replica whose use
// wavers by one keeps its block instead of a give-back and a grant per request).
internal sealed class SlotLease
{
    private long _counts;
    private long _wantedUntil;
    private int _taken;

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
                Taken();
                return true;
            }

            counts = found;
        }

        return false;
    }

    // A grant of `slots`, one of them for the request that asked.
    public void Granted(int slots)
    {
        Interlocked.Add(ref _counts, ((long)slots << 32) + 1);
        Taken();
    }

    // How many slots a grant asks for: as many as are used (the block doubles while use grows), one
    // while the worker is wanted elsewhere, never more than max_concurrency.
    public int Want(int max, long now) => IsWanted(now) ? 1 : Math.Clamp(Used, 1, Math.Max(1, max));

    // A request here gave its slot back: the slots to give back to the store with it (0: kept).
    public int Release(long now)
    {
        var wanted = IsWanted(now);
        var counts = Volatile.Read(ref _counts);
        while (true)
        {
            var used = (int)counts - 1;
            var leased = (int)(counts >> 32);
            var keep = wanted ? used : used + Math.Max(1, used);
            var back = Math.Max(0, leased - keep);
            var found = Interlocked.CompareExchange(ref _counts, Pack(leased - back, used), counts);
            if (found == counts)
            {
                return back;
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
    public void WantedUntil(long until)
    {
        var seen = Volatile.Read(ref _wantedUntil);
        while (until > seen)
        {
            var found = Interlocked.CompareExchange(ref _wantedUntil, until, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    public bool IsWanted(long now) => now < Volatile.Read(ref _wantedUntil);

    // The heartbeat's question: was no slot taken since it last asked? (And it asks again from now.)
    public bool Idle() => Interlocked.Exchange(ref _taken, 0) == 0;

    // Written only when it changes: a take in the steady state reads the line, never dirties it.
    private void Taken()
    {
        if (Volatile.Read(ref _taken) == 0)
        {
            Volatile.Write(ref _taken, 1);
        }
    }

    private static long Pack(int leased, int used) => ((long)leased << 32) | (uint)used;
}
