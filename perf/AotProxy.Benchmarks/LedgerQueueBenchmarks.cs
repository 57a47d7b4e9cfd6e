using System.Threading.Channels;
using AotProxy.Ledger;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// The journal's cost per request on the request path (issue 14): what a request hands the
// ledger writer's bounded channel (as LedgerWriter creates it), a row alone as before, or a
// journal entry (built as RecordStage builds it, priced) and a row; each read back at once,
// so the channel never fills (the read is the writer thread's share).
[MemoryDiagnoser]
public class LedgerQueueBenchmarks
{
    private readonly Channel<LedgerEntry> _channel = Channel.CreateBounded<LedgerEntry>(
        new BoundedChannelOptions(65_536) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private long _journal;

    [Benchmark(Baseline = true)]
    public bool Row()
    {
        var queued = _channel.Writer.TryWrite(new LedgerEntry(LedgerSample.Row(0), 0, Opens: false));
        return queued && _channel.Reader.TryRead(out _);
    }

    [Benchmark]
    public bool JournalAndRow()
    {
        var journal = Interlocked.Increment(ref _journal);
        var queued = _channel.Writer.TryWrite(new LedgerEntry(LedgerSample.Interrupted(0), journal, Opens: true))
            && _channel.Writer.TryWrite(new LedgerEntry(LedgerSample.Row(0), journal, Opens: false));
        return queued && _channel.Reader.TryRead(out _) && _channel.Reader.TryRead(out _);
    }
}
