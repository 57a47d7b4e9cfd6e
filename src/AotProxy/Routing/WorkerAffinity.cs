using System.Numerics;

namespace AotProxy.Routing;

// What p2c_kv's LoRA and session affinity remember of one worker. Resident: the adapters the
// gateway believes loaded there, as bits of the worker's model list (LoraAdapter.Bits). A request
// sent for an adapter makes it resident, as vLLM loads it; past max_lora the least recently sent
// goes, as vLLM's LRU evicts it. Between scrapes this is all the router knows (the gauge shows
// only adapters with running or waiting requests, not idle residents). Lock-free: a lost race
// at worst misjudges one adapter's residency until it is sent again.
internal sealed class WorkerAffinity
{
    private readonly long[] _sentAt = new long[64];
    private long _resident;
    private long _sessionPicks;

    public ulong Resident => (ulong)Volatile.Read(ref _resident);

    // Picks p2c_kv made by a conversation's session (SessionAffinity), for /api/routing/stats.
    public long SessionPicks => Interlocked.Read(ref _sessionPicks);

    public void CountSessionPick() => Interlocked.Increment(ref _sessionPicks);

    // bit: one adapter's (a single bit); maxLora: the worker's adapter slots, at least 1.
    public void Sent(ulong bit, int maxLora, long now)
    {
        Volatile.Write(ref _sentAt[BitOperations.TrailingZeroCount(bit)], now);
        var current = Volatile.Read(ref _resident);
        while (true)
        {
            var next = (ulong)current | bit;
            while (BitOperations.PopCount(next) > Math.Max(1, maxLora))
            {
                next &= ~LeastRecent(next & ~bit);
            }

            var found = Interlocked.CompareExchange(ref _resident, (long)next, current);
            if (found == current)
            {
                return;
            }

            current = found;
        }
    }

    private ulong LeastRecent(ulong mask)
    {
        var oldest = 0UL;
        var oldestAt = long.MaxValue;
        for (; mask != 0; mask &= mask - 1)
        {
            var bit = BitOperations.TrailingZeroCount(mask);
            var at = Volatile.Read(ref _sentAt[bit]);
            if (at < oldestAt)
            {
                oldest = 1UL << bit;
                oldestAt = at;
            }
        }

        return oldest;
    }
}
