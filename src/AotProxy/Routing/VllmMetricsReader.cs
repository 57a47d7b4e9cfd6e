using System.Buffers;

namespace AotProxy.Routing;

// Reads a worker's load out of a vLLM /metrics body (Prometheus text), line by line, without
// allocating. Feed() takes what a PipeReader has so far and returns how far it got; the caller
// keeps the unfinished last line for the next call (AdvanceTo(consumed, examined)). So a body
// can arrive in any number of pieces, cut anywhere, and the result is the same as reading it whole.
//
// Names are matched whole: vllm:num_requests_waiting_by_reason is not num_requests_waiting.
// Both generations of vLLM's names are read; where a server exposes both (0.9.2 to 0.11 has
// kv_cache_usage_perc and gpu_cache_usage_perc), the newer wins.
//
// With a VllmModelFilter, only series of the worker's models count; `default` reads every series.
// Labels are looked at only on the few lines that feed a field, so a filter costs little.
internal struct VllmMetricsReader
{
    // 64 KiB: the longest line of a vLLM 0.19.1 scrape (cache_config_info) is 691 bytes. A longer
    // line is skipped and counted as invalid rather than held, so one broken worker cannot grow
    // the scraper's buffer without bound.
    public const int MaxLineBytes = 64 * 1024;

    // A line split across segments is copied to the stack up to this size, else to a pooled array.
    private const int StackLineBytes = 1024;

    private const int HasRunning = 1, HasWaiting = 2, HasQueries = 4, HasHits = 8, HasGpuQueries = 16, HasGpuHits = 32,
        HasGpuBlocks = 64, HasBlockSize = 128, HasPreemptions = 256;

    private readonly VllmModelFilter? _filter; // null: every series counts

    private double _running;
    private double _waiting;
    private double _kvSum;
    private double _gpuKvSum;
    private double _queries;
    private double _hits;
    private double _gpuQueries;
    private double _gpuHits;
    private double _preemptions;
    private int _kvCount;
    private int _gpuKvCount;
    private long _numGpuBlocks;
    private int _blockSize;
    private LoraAdapters _lora;
    private double _loraAt;
    private int _otherModel;
    private int _seen;
    private int _samples;
    private int _invalidLines;
    private int _rejected;
    private bool _skippingLongLine;

    public readonly VllmMetrics Result
    {
        get
        {
            var present = VllmMetricFields.None;
            present |= (_seen & HasRunning) != 0 ? VllmMetricFields.Running : 0;
            present |= (_seen & HasWaiting) != 0 ? VllmMetricFields.Waiting : 0;
            present |= _kvCount + _gpuKvCount > 0 ? VllmMetricFields.KvCacheUsage : 0;
            present |= (_seen & (HasQueries | HasGpuQueries)) != 0 ? VllmMetricFields.PrefixCacheQueries : 0;
            present |= (_seen & (HasHits | HasGpuHits)) != 0 ? VllmMetricFields.PrefixCacheHits : 0;
            present |= (_seen & HasGpuBlocks) != 0 ? VllmMetricFields.NumGpuBlocks : 0;
            present |= (_seen & HasBlockSize) != 0 ? VllmMetricFields.BlockSize : 0;
            present |= (_seen & HasPreemptions) != 0 ? VllmMetricFields.Preemptions : 0;
            return new VllmMetrics(
                present,
                _running,
                _waiting,
                _kvCount > 0 ? _kvSum / _kvCount : _gpuKvCount > 0 ? _gpuKvSum / _gpuKvCount : 0,
                (_seen & HasQueries) != 0 ? _queries : _gpuQueries,
                (_seen & HasHits) != 0 ? _hits : _gpuHits,
                _numGpuBlocks,
                _blockSize,
                _samples,
                _invalidLines,
                _rejected,
                _otherModel,
                _lora,
                _preemptions);
        }
    }

    public VllmMetricsReader(VllmModelFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        _filter = filter.IsEmpty ? null : filter;
    }

    public static VllmMetrics Read(ReadOnlySpan<byte> body, VllmModelFilter? filter = null)
    {
        var reader = new VllmMetricsReader(filter ?? VllmModelFilter.All);
        reader.Feed(body, isFinalBlock: true);
        return reader.Result;
    }

    public static VllmMetrics Read(ReadOnlySequence<byte> body, VllmModelFilter? filter = null)
    {
        var reader = new VllmMetricsReader(filter ?? VllmModelFilter.All);
        reader.Feed(body, isFinalBlock: true);
        return reader.Result;
    }

    // Reads every whole line of `buffer` and returns the number of bytes consumed. With
    // isFinalBlock, an unterminated last line is read too and everything is consumed.
    public long Feed(ReadOnlySequence<byte> buffer, bool isFinalBlock)
    {
        if (buffer.IsSingleSegment)
        {
            return Feed(buffer.FirstSpan, isFinalBlock);
        }

        // Segment by segment: lines inside one segment (all but one per 4 KiB read) are read in
        // place, as in the span path, with no SequenceReader or slice per line; only a line cut
        // by a segment edge is sliced out of the sequence and copied.
        long lineStart = 0, segmentStart = 0;
        var position = buffer.Start;
        while (buffer.TryGet(ref position, out var memory))
        {
            var span = memory.Span;
            var i = 0;
            if (_skippingLongLine || lineStart < segmentStart)
            {
                var newline = span.IndexOf((byte)'\n');
                if (newline < 0)
                {
                    segmentStart += span.Length;
                    if (_skippingLongLine)
                    {
                        lineStart = segmentStart;
                    }

                    continue;
                }

                if (_skippingLongLine)
                {
                    _skippingLongLine = false;
                }
                else
                {
                    ReadLine(buffer.Slice(lineStart, segmentStart + newline - lineStart));
                }

                i = newline + 1;
            }

            while (true)
            {
                var newline = span[i..].IndexOf((byte)'\n');
                if (newline < 0)
                {
                    break;
                }

                ReadLine(span.Slice(i, newline));
                i += newline + 1;
            }

            lineStart = segmentStart + i;
            segmentStart += span.Length;
        }

        if (_skippingLongLine)
        {
            _skippingLongLine = !isFinalBlock;
            return buffer.Length;
        }

        var tail = buffer.Length - lineStart;
        if (isFinalBlock)
        {
            if (tail > 0)
            {
                ReadLine(buffer.Slice(lineStart)); // no trailing newline: the last line still counts
            }

            return buffer.Length;
        }

        return lineStart + HoldOrSkip(tail);
    }

    public long Feed(ReadOnlySpan<byte> buffer, bool isFinalBlock)
    {
        var consumed = 0;
        if (_skippingLongLine)
        {
            var newline = buffer.IndexOf((byte)'\n');
            if (newline < 0)
            {
                _skippingLongLine = !isFinalBlock;
                return buffer.Length;
            }

            _skippingLongLine = false;
            consumed = newline + 1;
        }

        while (true)
        {
            var rest = buffer[consumed..];
            var newline = rest.IndexOf((byte)'\n');
            if (newline < 0)
            {
                break;
            }

            ReadLine(rest[..newline]);
            consumed += newline + 1;
        }

        var tail = buffer[consumed..];
        if (isFinalBlock)
        {
            if (!tail.IsEmpty)
            {
                ReadLine(tail); // no trailing newline: the last line still counts
            }

            return buffer.Length;
        }

        return consumed + HoldOrSkip(tail.Length);
    }

    // Returns how much of an unfinished line to consume: none (the caller keeps it), or all of it
    // once it is already too long to be read, counted once as invalid.
    private long HoldOrSkip(long tailLength)
    {
        if (tailLength <= MaxLineBytes)
        {
            return 0;
        }

        _invalidLines++;
        _skippingLongLine = true;
        return tailLength;
    }

    private void ReadLine(ReadOnlySequence<byte> line)
    {
        if (line.IsSingleSegment)
        {
            ReadLine(line.FirstSpan);
            return;
        }

        if (line.Length > MaxLineBytes)
        {
            _invalidLines++;
            return;
        }

        var length = (int)line.Length;
        if (length <= StackLineBytes)
        {
            Span<byte> copy = stackalloc byte[StackLineBytes];
            line.CopyTo(copy);
            ReadLine(copy[..length]);
            return;
        }

        var rented = ArrayPool<byte>.Shared.Rent(length);
        line.CopyTo(rented);
        ReadLine(rented.AsSpan(0, length));
        ArrayPool<byte>.Shared.Return(rented);
    }

    private void ReadLine(ReadOnlySpan<byte> line)
    {
        if (line.Length > MaxLineBytes)
        {
            _invalidLines++;
            return;
        }

        switch (PrometheusLine.Parse(line, out var name, out var labels, out var value))
        {
            case PrometheusLineKind.Sample:
                _samples++;
                if (name.StartsWith("vllm:"u8))
                {
                    OnVllmSample(name["vllm:".Length..], labels, value);
                }

                break;

            case PrometheusLineKind.Invalid:
                _invalidLines++;
                break;
        }
    }

    private void OnVllmSample(ReadOnlySpan<byte> name, ReadOnlySpan<byte> labels, double value)
    {
        if (name.SequenceEqual("num_requests_running"u8))
        {
            Add(ref _running, HasRunning, labels, value);
        }
        else if (name.SequenceEqual("num_requests_waiting"u8))
        {
            Add(ref _waiting, HasWaiting, labels, value);
        }
        else if (name.SequenceEqual("kv_cache_usage_perc"u8))
        {
            AddKv(ref _kvSum, ref _kvCount, labels, value);
        }
        else if (name.SequenceEqual("gpu_cache_usage_perc"u8))
        {
            AddKv(ref _gpuKvSum, ref _gpuKvCount, labels, value);
        }
        else if (name.SequenceEqual("prefix_cache_queries_total"u8))
        {
            Add(ref _queries, HasQueries, labels, value);
        }
        else if (name.SequenceEqual("prefix_cache_hits_total"u8))
        {
            Add(ref _hits, HasHits, labels, value);
        }
        else if (name.SequenceEqual("gpu_prefix_cache_queries_total"u8))
        {
            Add(ref _gpuQueries, HasGpuQueries, labels, value);
        }
        else if (name.SequenceEqual("gpu_prefix_cache_hits_total"u8))
        {
            Add(ref _gpuHits, HasGpuHits, labels, value);
        }
        else if (name.SequenceEqual("num_preemptions_total"u8))
        {
            Add(ref _preemptions, HasPreemptions, labels, value);
        }
        else if (name.SequenceEqual("cache_config_info"u8))
        {
            OnCacheConfig(labels);
        }
        else if (name.SequenceEqual("lora_requests_info"u8))
        {
            OnLoraInfo(labels, value);
        }
    }

    // vLLM (V0 and V1) sets this gauge to the time of each update, on the label set of the moment:
    // prometheus_client keeps every label set it was ever given, so the newest sample is the state.
    // No model_name label: the adapters are named in the values.
    private void OnLoraInfo(ReadOnlySpan<byte> labels, double value)
    {
        if (!double.IsFinite(value)
            || !PrometheusLabels.TryFind(labels, "max_lora"u8, out var max)
            || !PrometheusLabels.TryParseCount(max, out var maxLora) || maxLora > int.MaxValue
            || !PrometheusLabels.TryFind(labels, "running_lora_adapters"u8, out var running)
            || !PrometheusLabels.TryFind(labels, "waiting_lora_adapters"u8, out var waiting))
        {
            _rejected++;
            return;
        }

        if (_lora.Reported && value < _loraAt)
        {
            return;
        }

        var (runningCount, runningMask) = ReadAdapters(running);
        var (waitingCount, waitingMask) = ReadAdapters(waiting);
        _lora = new LoraAdapters(true, (int)maxLora, runningCount, waitingCount, runningMask, waitingMask);
        _loraAt = value;
    }

    // A comma-separated list of adapter names (vLLM joins them with ","): how many, and the bits of
    // those that are among the worker's models.
    private readonly (int Count, ulong Mask) ReadAdapters(ReadOnlySpan<byte> list)
    {
        var count = 0;
        ulong mask = 0;
        foreach (var range in list.Split((byte)','))
        {
            var name = list[range];
            if (name.IsEmpty)
            {
                continue;
            }

            count++;
            var index = _filter?.IndexOf(name) ?? -1;
            if (index is >= 0 and < 64)
            {
                mask |= 1UL << index;
            }
        }

        return (count, mask);
    }

    // An info metric: its value is always 1 and the facts are labels, one label set per engine.
    // Data-parallel engines each hold their own blocks, so the worker's capacity is their sum.
    private void OnCacheConfig(ReadOnlySpan<byte> labels)
    {
        if (!IsOurs(labels))
        {
            return;
        }

        if (PrometheusLabels.TryFind(labels, "num_gpu_blocks"u8, out var blocks))
        {
            if (PrometheusLabels.TryParseCount(blocks, out var count))
            {
                _numGpuBlocks += count;
                _seen |= HasGpuBlocks;
            }
            else
            {
                _rejected++;
            }
        }

        if (PrometheusLabels.TryFind(labels, "block_size"u8, out var size))
        {
            if (PrometheusLabels.TryParseCount(size, out var tokens) && tokens <= int.MaxValue)
            {
                _blockSize = Math.Max(_blockSize, (int)tokens);
                _seen |= HasBlockSize;
            }
            else
            {
                _rejected++;
            }
        }
    }

    private bool IsOurs(ReadOnlySpan<byte> labels)
    {
        if (_filter is null || _filter.Accepts(labels))
        {
            return true;
        }

        _otherModel++;
        return false;
    }

    private void Add(ref double sum, int flag, ReadOnlySpan<byte> labels, double value)
    {
        if (!IsOurs(labels))
        {
            return;
        }

        if (!IsUsable(value))
        {
            _rejected++;
            return;
        }

        sum += value;
        _seen |= flag;
    }

    private void AddKv(ref double sum, ref int count, ReadOnlySpan<byte> labels, double value)
    {
        if (!IsOurs(labels))
        {
            return;
        }

        if (!IsUsable(value))
        {
            _rejected++;
            return;
        }

        sum += value;
        count++;
    }

    // A NaN or infinite gauge would poison every score computed from it.
    private static bool IsUsable(double value) => double.IsFinite(value) && value >= 0;
}
