using AotProxy.Accounting;

namespace AotProxy.Caching;

// One answer as the client got it from the worker: its status, content type and body bytes; for
// an event stream also where each SSE event ended, so a hit replays it event by event with the
// same boundaries. Usage is the original's (what a charged hit costs, and what its body says).
// The LRU links belong to ResponseCache and are only touched under its lock.
internal sealed class CachedResponse(UInt128 key, int status, string contentType, byte[] body, int[]? eventEnds, Usage usage, string model, long stored)
{
    // What an entry costs beyond its arrays, measured (perf/RESULTS.md, "Issue 21 (response
    // cache)"): this object, the two array headers and the dictionary's entry and bucket.
    public const int Overhead = 200;

    public UInt128 Key { get; } = key;

    public int Status { get; } = status;

    public string ContentType { get; } = contentType;

    public byte[] Body { get; } = body;

    // null: a JSON answer, written whole.
    public int[]? EventEnds { get; } = eventEnds;

    public Usage Usage { get; } = usage;

    public string Model { get; } = model;

    public long Stored { get; } = stored; // TimeProvider timestamp

    public long Bytes => Overhead + Body.LongLength + ((EventEnds?.LongLength ?? 0) * sizeof(int)) + (ContentType.Length * sizeof(char));

    internal CachedResponse? Newer;
    internal CachedResponse? Older;
}
