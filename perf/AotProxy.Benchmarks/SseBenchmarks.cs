using System.Buffers;
using System.IO.Pipelines;
using AotProxy.Accounting;
using AotProxy.Forwarding;
using AotProxy.Testing;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// The SSE relay (Forwarder.Relay): whole events out, usage read (with cached and reasoning
// tokens), content chunks counted, the gateway's usage-only chunk dropped. The output is an ArrayBufferWriter reset per operation, so only the relay's own
// allocations show. Divide a *Stream figure by Events for the cost per event.
[MemoryDiagnoser]
public class SseBenchmarks
{
    private byte[] _stream = [];
    private ReadOnlySequence<byte>[] _events = [];
    private ReadOnlySequence<byte> _smallSegments;
    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);
    private readonly Pipe _upstream = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
    private SseUsageFilter _filter = new(stripUsage: true);
    private int _next;

    [Params("chat_stream_usage.sse", "chat_stream.sse", "openai_ref_chat_stream_usage.sse")]
    public string Fixture { get; set; } = "chat_stream_usage.sse";

    public int Events => _events.Length;

    [GlobalSetup]
    public void Setup()
    {
        _stream = Fixtures.Bytes("openai/" + Fixture);
        var events = new List<ReadOnlySequence<byte>>();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_stream));
        while (SseEventScanner.TryReadEvent(ref reader, out var sseEvent))
        {
            events.Add(sseEvent);
        }

        _events = [.. events];
        _smallSegments = SegmentedSequence.Create(_stream, 64);
        _filter = new SseUsageFilter(stripUsage: true);
        Console.WriteLine($"// {Fixture}: {_events.Length} events, {_stream.Length} bytes");

        // The usage-bearing fixtures must yield their usage, and the vLLM ones count their
        // content chunks (the estimate of a stream cut before its usage), or the benchmark
        // measures nothing.
        WholeStream();
        if (Fixture != "chat_stream.sse" && _filter.Usage is null)
        {
            throw new InvalidOperationException($"{Fixture}: no usage read");
        }

        if (Fixture != "openai_ref_chat_stream_usage.sse" && _filter.ContentChunks == 0)
        {
            throw new InvalidOperationException($"{Fixture}: no content chunk counted");
        }
    }

    // One upstream read holds the whole stream (a fast worker, a short answer).
    [Benchmark]
    public long WholeStream()
    {
        _output.ResetWrittenCount();
        _filter.Process(new ReadOnlySequence<byte>(_stream), _output, isFinal: true, out var written);
        return written;
    }

    // The same stream cut into 64-byte segments: events and JSON tokens split across segments.
    [Benchmark]
    public long WholeStream64BSegments()
    {
        _output.ResetWrittenCount();
        _filter.Process(_smallSegments, _output, isFinal: true, out var written);
        return written;
    }

    // vLLM flushes each token: one event per upstream read, through a real Pipe, with the
    // ReadAsync / Process / AdvanceTo loop of Forwarder.Relay.
    [Benchmark]
    public long EventPerRead() => EventPerReadRelay.Run(ref _filter, _events, _upstream, _output);

    // One event per operation, the stream's events in turn: SseEventScanner and
    // StreamChunkReader alone, without the copy to the client.
    [Benchmark]
    public int ScanAndClassifyOneEvent()
    {
        var sseEvent = _events[_next];
        _next = _next + 1 == _events.Length ? 0 : _next + 1;
        var reader = new SequenceReader<byte>(sseEvent);
        SseEventScanner.TryReadEvent(ref reader, out var scanned);
        return (int)StreamChunkReader.Read(scanned, out var usage) + (int)usage.TotalTokens;
    }
}
