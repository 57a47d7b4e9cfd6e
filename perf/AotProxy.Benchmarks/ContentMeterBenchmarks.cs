using System.Buffers;
using System.IO.Pipelines;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Limits;
using AotProxy.Testing;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// The per-chunk hook on the hot path (ContentMeter): a vLLM stream relayed one event per read, as
// SseBenchmarks.EventPerRead, without a meter (the baseline: a relay with nothing to debit or
// charge, what a tenant without stream_budget_cutoff outside a scheduler pays) and with both a
// stream budget (one TenantBudgetState debit per content chunk) and a fair-share charge
// (StreamedCharge: one flush per read). The difference is the hook's cost per stream; divide by
// the stream's content chunks for the cost per chunk.
[MemoryDiagnoser]
public class ContentMeterBenchmarks
{
    private static readonly ModelPrice Price = new(1_000, 1_000, 2_000);

    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);
    private readonly Pipe _upstream = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
    private readonly StreamedCharge _charge = new();
    private ContentMeter _meter = null!;
    private ReadOnlySequence<byte>[] _events = [];
    private TenantBudgetState _budget = null!;
    private SseUsageFilter _unmetered;
    private SseUsageFilter _metered;

    [GlobalSetup]
    public void Setup()
    {
        var stream = Fixtures.Bytes("openai/chat_stream_usage.sse");
        var events = new List<ReadOnlySequence<byte>>();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(stream));
        while (SseEventScanner.TryReadEvent(ref reader, out var sseEvent))
        {
            events.Add(sseEvent);
        }

        _events = [.. events];
        // Budgets far past what a run debits (the debits are held, as a stream's are until it settles).
        _budget = new TenantBudgetState(new TenantBudgetModel(TenantBudgetModel.MaxTokens, 0, 0, 0), TimeProvider.System);
        _charge.Start(new FairShareAccount("acme"), new FairShareAccount("default"), new GrantCharge(100, 1, 2, 1, 1), fleet: null);
        _unmetered = new SseUsageFilter(stripUsage: true);
        _meter = new ContentMeter(_charge);
        _meter.Start(new StreamBudget(_budget, Price.OutputNanos));
        _metered = new SseUsageFilter(stripUsage: true, _meter);

        // Both must relay the same bytes and count the same content chunks, and the metered one
        // must have debited and charged them, or the benchmark compares nothing.
        var plain = Unmetered();
        var metered = Metered();
        if (plain != metered || _unmetered.ContentChunks == 0 || _metered.ContentChunks != _unmetered.ContentChunks
            || _meter.Budget.Tokens != _metered.ContentChunks || _charge.Chunks != _metered.ContentChunks)
        {
            throw new InvalidOperationException("the metered relay did not meter what the plain one relayed");
        }

        Console.WriteLine($"// {_events.Length} events, {_unmetered.ContentChunks} content chunks per stream");
    }

    [Benchmark(Baseline = true)]
    public long Unmetered() => EventPerReadRelay.Run(ref _unmetered, _events, _upstream, _output);

    [Benchmark]
    public long Metered() => EventPerReadRelay.Run(ref _metered, _events, _upstream, _output);
}
