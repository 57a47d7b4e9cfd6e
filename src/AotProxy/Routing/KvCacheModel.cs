using System.Numerics;
using AotProxy.Inspection;

namespace AotProxy.Routing;

// What one worker's KV cache holds, as far as the gateway can tell: the prompt chunks it sent
// there (chained hashes, Inspection/PromptChunks), evicted least recently used within the worker's
// real capacity. A logical clock counts chunks: it advances when a chunk that is not resident is
// recorded, and a chunk is resident while fewer than capacity x correction chunks were recorded
// after it (and prefix_ttl has not passed). That is vLLM's own LRU over freed blocks, seen from
// outside; the correction (0.1..1) shrinks it when the worker's hit counters say it keeps less,
// and a restart of the worker (its counters went back) empties it (Forget).
//
// The table is 4-way set associative, a power of two of buckets with at least 4x the capacity
// in slots: a bucket is one probe, and a full bucket gives up its oldest entry (which the LRU
// would evict first anyway). 4x rather than 2x: at 2x, ~4% of buckets would hold more than 4
// resident chunks and forget one early; at 4x ~0.3% (Poisson with a mean of 1 resident per
// bucket). Lock-free: requests record and look up concurrently; a torn key/stamp pair can at
// worst misjudge one chunk of one request (as PrefixMemory's could).
internal sealed class KvCacheModel
{
    public const long DefaultCapacityTokens = 131_072;

    private const int Ways = 4;
    private const double MinCorrection = 0.1;

    // Below this many hit tokens (predicted or reported) in a scrape interval, the comparison is noise.
    private const double MinEvidenceTokens = 4 * PromptChunks.TokensPerChunk;

    private volatile Table _table;
    private long _clock;
    private long _capacityTokens;
    private long _correctionBits = BitConverter.DoubleToInt64Bits(1.0);

    public KvCacheModel(long capacityTokens = DefaultCapacityTokens)
    {
        _capacityTokens = Math.Max(PromptChunks.TokensPerChunk, capacityTokens);
        _table = new Table(CapacityChunks(_capacityTokens));
    }

    public long CapacityTokens => Volatile.Read(ref _capacityTokens);

    // Whether the table is allocated yet (its first Record does it).
    internal bool HoldsTable => _table.Entries is not null;

    public double Correction => BitConverter.Int64BitsToDouble(Volatile.Read(ref _correctionBits));

    // Chunks a chunk may fall behind the clock and still be resident.
    private long Window => Math.Max(1, (long)(CapacityChunks(CapacityTokens) * Correction));

    // A new capacity (the first scrape's cache_config_info, a reload's kv_cache_tokens): a table of
    // another size starts empty; the worker's cache changed size, so it was restarted anyway.
    public void SetCapacity(long tokens)
    {
        tokens = Math.Max(PromptChunks.TokensPerChunk, tokens);
        if (Interlocked.Exchange(ref _capacityTokens, tokens) == tokens)
        {
            return;
        }

        var chunks = CapacityChunks(tokens);
        if (_table.Slots != Table.SlotsFor(chunks))
        {
            _table = new Table(chunks);
        }
    }

    // The worker restarted (WorkerState saw its counters go back): its cache is empty, and what
    // the correction learned was about the process that is gone. A new table, swapped in like
    // SetCapacity's: a lookup or record still on the old one finishes there (at worst one stale
    // hit, or a prompt recorded into the table being dropped), never a torn entry.
    public void Forget()
    {
        _table = new Table(CapacityChunks(CapacityTokens));
        Volatile.Write(ref _correctionBits, BitConverter.DoubleToInt64Bits(1.0));
    }

    // Records a prompt sent to this worker, last chunk first, so that the head gets the newest
    // stamp: vLLM frees a request's blocks in reverse order and evicts a prompt's tail before its
    // head (the simulator's PrefixCache does the same). Returns the chunks of its longest prefix
    // that were resident before: what this request should hit.
    public int Record(ReadOnlySpan<ulong> chain, long now, long horizon)
    {
        if (chain.IsEmpty)
        {
            return 0; // a short prompt: no table for it
        }

        var table = _table;
        var entries = table.Written();
        var window = Window;
        var cached = chain.Length;
        for (var i = chain.Length - 1; i >= 0; i--)
        {
            var key = chain[i];
            var bucket = table.Bucket(key);
            var found = Find(entries, bucket, key);
            var clock = Volatile.Read(ref _clock);
            if (found >= 0 && IsResident(ref entries[found], key, clock, window, horizon))
            {
                ref var entry = ref entries[found];
                Volatile.Write(ref entry.Stamp, clock);
                Volatile.Write(ref entry.At, now);
                continue;
            }

            cached = i;
            var slot = found >= 0 ? found : Victim(entries, bucket);
            ref var target = ref entries[slot];
            Volatile.Write(ref target.Stamp, Interlocked.Increment(ref _clock));
            Volatile.Write(ref target.At, now);
            Volatile.Write(ref target.Key, key);
        }

        return cached;
    }

    // The longest resident prefix of `chain`, in chunks, by binary search: recording last to first
    // keeps residency monotone along a chain, so log2(chunks) probes decide it. The head first:
    // most workers of a fleet do not hold a given prompt, and one probe (a likely cache miss in a
    // table of 200 KiB) tells them apart.
    public int CachedChunks(ReadOnlySpan<ulong> chain, long horizon)
    {
        var table = _table;
        var window = Window;
        var clock = Volatile.Read(ref _clock);
        if (chain.IsEmpty || !IsResident(table, chain[0], clock, window, horizon))
        {
            return 0;
        }

        int low = 1, high = chain.Length;
        while (low < high)
        {
            var mid = (low + high + 1) >> 1;
            if (IsResident(table, chain[mid - 1], clock, window, horizon))
            {
                low = mid;
            }
            else
            {
                high = mid - 1;
            }
        }

        return low;
    }

    // The tokens the model believes resident (admin API; scans the table).
    public long ResidentTokens(long horizon)
    {
        if (_table.Entries is not { } entries)
        {
            return 0;
        }

        var window = Window;
        var clock = Volatile.Read(ref _clock);
        long chunks = 0;
        for (var i = 0; i < entries.Length; i++)
        {
            ref var entry = ref entries[i];
            var key = Volatile.Read(ref entry.Key);
            if (key != 0 && IsResident(ref entry, key, clock, window, horizon))
            {
                chunks++;
            }
        }

        return Math.Min(chunks * PromptChunks.TokensPerChunk, CapacityTokens);
    }

    // One scrape interval's evidence: the hit tokens the worker reported against those the model
    // predicted for the requests sent there. Fewer real hits than predicted shrink the correction
    // toward correction x ratio (an EWMA at the routing learning rate), more grow it back toward 1.
    public void Correct(double reportedHits, double predictedHits, double learningRate)
    {
        var correction = Correction;
        if (predictedHits >= MinEvidenceTokens || reportedHits >= MinEvidenceTokens)
        {
            var ratio = predictedHits > 0 ? reportedHits / predictedHits : 2;
            correction += learningRate * (Math.Clamp(correction * ratio, MinCorrection, 1) - correction);
        }

        Volatile.Write(ref _correctionBits, BitConverter.DoubleToInt64Bits(Math.Clamp(correction, MinCorrection, 1)));
    }

    // The worker preempted: vLLM had no free block left, so every cached block that no running
    // request holds was evicted, and what stays is the prompts in flight there (`inFlightTokens`),
    // the most recent ones. The model forgets all but that many of its newest chunks; the
    // correction stays, as the cache is as large as before. (Shrinking the correction on every
    // preemption instead compounded under load to its floor within seconds, and the model forgot
    // prompts the worker still served: perf/routing.sh cache-pressure, hits 68% -> 78% without it.)
    // A scan of the table on the scrape loop; a Record racing it may lose one chunk's entry.
    public void OnPreempted(long inFlightTokens)
    {
        var keep = inFlightTokens / PromptChunks.TokensPerChunk;
        if (keep >= Window)
        {
            return; // as at most real preemptions: the requests in flight fill the cache
        }

        if (_table.Entries is not { } entries)
        {
            return; // nothing recorded, nothing to forget
        }

        var clock = Volatile.Read(ref _clock);
        for (var i = 0; i < entries.Length; i++)
        {
            if (clock - Volatile.Read(ref entries[i].Stamp) >= keep)
            {
                Volatile.Write(ref entries[i].Key, 0);
            }
        }
    }

    private static long CapacityChunks(long tokens) => Math.Max(1, tokens / PromptChunks.TokensPerChunk);

    private static bool IsResident(ref Entry entry, ulong key, long clock, long window, long horizon) =>
        Volatile.Read(ref entry.Key) == key && clock - Volatile.Read(ref entry.Stamp) < window && Volatile.Read(ref entry.At) >= horizon;

    private static bool IsResident(Table table, ulong key, long clock, long window, long horizon)
    {
        if (table.Entries is not { } entries)
        {
            return false;
        }

        var found = Find(entries, table.Bucket(key), key);
        return found >= 0 && IsResident(ref entries[found], key, clock, window, horizon);
    }

    private static int Find(Entry[] entries, int bucket, ulong key)
    {
        for (var i = bucket; i < bucket + Ways; i++)
        {
            if (Volatile.Read(ref entries[i].Key) == key)
            {
                return i;
            }
        }

        return -1;
    }

    // An empty slot, else the least recently stamped.
    private static int Victim(Entry[] entries, int bucket)
    {
        var oldest = bucket;
        for (var i = bucket; i < bucket + Ways; i++)
        {
            if (Volatile.Read(ref entries[i].Key) == 0)
            {
                return i;
            }

            if (Volatile.Read(ref entries[i].Stamp) < Volatile.Read(ref entries[oldest].Stamp))
            {
                oldest = i;
            }
        }

        return oldest;
    }

    private struct Entry
    {
        public ulong Key;   // a chunk's chained hash; 0: empty
        public long Stamp;  // the clock when it was last recorded
        public long At;     // and the time (TimeProvider timestamp), for prefix_ttl
    }

    private sealed class Table(long capacityChunks)
    {
        private readonly int _bucketMask = (SlotsFor(capacityChunks) / Ways) - 1;

        private Entry[]? _entries;

        public int Slots { get; } = SlotsFor(capacityChunks);

        // Null until a prompt is recorded: a worker no prompt of a whole chunk went to holds no
        // table. A 3.2M-token cache's is 6 MiB, two thirds of the gateway's heap at its start
        // (perf/RESULTS.md, issue 22: memory per stream).
        public Entry[]? Entries => Volatile.Read(ref _entries);

        // The table a record writes into; two first records at once agree on one.
        public Entry[] Written()
        {
            if (Volatile.Read(ref _entries) is { } entries)
            {
                return entries;
            }

            Interlocked.CompareExchange(ref _entries, new Entry[Slots], null);
            return Volatile.Read(ref _entries)!;
        }

        // At least 4x the capacity, in whole buckets, a power of two (the default 131072 tokens: 8,192
        // slots, 192 KiB). At most 2^20 slots (24 MiB, a cache of 16M tokens; an 8B model's 60 GB of
        // KV on an H100 is ~470k): beyond, the table holds fewer chunks than the worker and forgets some early.
        public static int SlotsFor(long capacityChunks) => (int)Math.Max(Ways, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Min(capacityChunks * 4, 1 << 20)));

        public int Bucket(ulong key) => (int)(StableHash.Mix(key) & (ulong)_bucketMask) * Ways;
    }
}
