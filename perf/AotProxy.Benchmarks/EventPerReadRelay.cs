using System.Buffers;
using System.IO.Pipelines;
using AotProxy.Forwarding;

namespace AotProxy.Benchmarks;

// vLLM flushes each token: one event per upstream read, through a real Pipe, with the
// ReadAsync / Process / AdvanceTo loop of Forwarder.Relay (SseBenchmarks, ContentMeterBenchmarks).
internal static class EventPerReadRelay
{
    public static long Run(ref SseUsageFilter filter, ReadOnlySequence<byte>[] events, Pipe upstream, ArrayBufferWriter<byte> output)
    {
        output.ResetWrittenCount();
        var writer = upstream.Writer;
        var reader = upstream.Reader;
        long total = 0;
        foreach (var sseEvent in events)
        {
            foreach (var segment in sseEvent)
            {
                writer.Write(segment.Span);
            }

            // No pause threshold, so the flush completes at once; anything else is a broken setup.
            var flush = writer.FlushAsync();
            if (!flush.IsCompletedSuccessfully)
            {
                throw new InvalidOperationException("the upstream pipe paused");
            }

            reader.TryRead(out var result);
            var consumed = filter.Process(result.Buffer, output, isFinal: false, out var written);
            reader.AdvanceTo(consumed, result.Buffer.End);
            total += written;
        }

        writer.Complete();
        reader.TryRead(out var last);
        filter.Process(last.Buffer, output, isFinal: true, out var rest);
        reader.AdvanceTo(last.Buffer.End);
        reader.Complete();
        upstream.Reset(); // both ends complete: the pipe and its segments are reused
        return total + rest;
    }
}
