using System.Buffers;
using AotProxy.Accounting;
using AotProxy.Testing;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// Usage from a non-stream response as it streams through (Forwarder.Relay, JsonWithUsage mode).
[MemoryDiagnoser]
public class UsageJsonScannerBenchmarks
{
    private ReadOnlySequence<byte> _whole;
    private ReadOnlySequence<byte> _segments;

    [Params("chat_nonstream.json", "chat_nonstream_v0.10.json", "completions.json", "embeddings.json")]
    public string Fixture { get; set; } = "chat_nonstream.json";

    [GlobalSetup]
    public void Setup()
    {
        var bytes = Fixtures.Bytes("openai/" + Fixture);
        _whole = new ReadOnlySequence<byte>(bytes);
        _segments = SegmentedSequence.Create(bytes, 64);
        if (WholeBody() == 0 || Segments64B() != WholeBody())
        {
            throw new InvalidOperationException($"{Fixture}: no usage read");
        }
    }

    [Benchmark]
    public long WholeBody()
    {
        var scanner = default(UsageJsonScanner);
        scanner.Feed(_whole, isFinalBlock: true);
        return scanner.Found ? scanner.Usage.TotalTokens : 0;
    }

    // The body in 64-byte segments, as one sequence: tokens split across segments.
    [Benchmark]
    public long Segments64B()
    {
        var scanner = default(UsageJsonScanner);
        scanner.Feed(_segments, isFinalBlock: true);
        return scanner.Found ? scanner.Usage.TotalTokens : 0;
    }
}
