using System.Buffers;

namespace AotProxy.Memory;

// The hot path's byte arrays: request bodies, upstream request heads, response heads and the
// upstream read window. ArrayPool<byte>.Shared keeps 8 arrays per size per core, so with 64
// requests in flight on one core most requests rented a fresh 16 KiB array (3-5 KB allocated
// per request at 64-256 connections, perf/RESULTS.md). This pool keeps up to 1,024 arrays per
// size; it only ever holds what was once in use at the same time.
internal static class BufferPool
{
    public static ArrayPool<byte> Shared { get; } = ArrayPool<byte>.Create(maxArrayLength: 8 * 1024 * 1024, maxArraysPerBucket: 1024);
}
