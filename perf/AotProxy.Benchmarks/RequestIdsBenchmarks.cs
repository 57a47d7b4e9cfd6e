using AotProxy.Http;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// A new x-request-id (RequestIds.NewId, once per request without the client's own): the process's
// prefix, then the counter's 16 hex digits: RequestIds.NewId as it is (the runtime's
// Convert.TryToHexStringLower over the counter's 8 big-endian bytes), against the shift loop it
// replaced (ttft22d's, kept here as the baseline).
[MemoryDiagnoser]
public class RequestIdsBenchmarks
{
    private static readonly string Prefix = ((ulong)Random.Shared.NextInt64()).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    private long _next;

    [Benchmark]
    public string NewId() => RequestIds.NewId();

    [Benchmark(Baseline = true)]
    public string ShiftLoop() =>
        string.Create(32, (ulong)Interlocked.Increment(ref _next), static (span, counter) =>
        {
            Prefix.CopyTo(span);
            for (var i = 31; i >= 16; i--)
            {
                span[i] = (char)"0123456789abcdef"u8[(int)(counter & 0xf)];
                counter >>= 4;
            }
        });
}
