using System.Buffers;
using System.Text;
using System.Text.Json;
using AotProxy.Inspection;
using BenchmarkDotNet.Attributes;
using CommunityToolkit.HighPerformance.Buffers;

namespace AotProxy.Benchmarks;

// The inspect stage: one Utf8JsonReader pass per request body (Inspection/InspectionStage), plus the
// include_usage splice when the gateway must ask upstream for usage, and the engine priority
// (RequestBody.Apply).
[MemoryDiagnoser]
public class RequestInspectionBenchmarks
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";

    private static readonly byte[] ModelJson = Encoding.UTF8.GetBytes($"\"{Model}\"");

    private byte[] _small = [];
    private byte[] _large = [];
    private byte[] _stream = [];
    private readonly ulong[] _chunks = new ulong[PromptChunks.Max];

    [GlobalSetup]
    public void Setup()
    {
        _small = Encoding.UTF8.GetBytes(
            $$"""{"model":"{{Model}}","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France?"}],"max_tokens":128,"temperature":0.7,"user":"u-42"}""");

        // ~16 KiB of prompt: a pasted document with quotes, newlines and non-ASCII, as a long
        // RAG or code-review request carries.
        var document = new StringBuilder();
        while (document.Length < 16 * 1024)
        {
            document.Append("Line ").Append(document.Length).Append(": the \\\"gateway\\\" reads only what it needs \u2014 caf\u00e9, na\u00efve.\\n");
        }

        _large = Encoding.UTF8.GetBytes(
            $$"""{"model":"{{Model}}","messages":[{"role":"system","content":"Summarise the document."},{"role":"user","content":"{{document}}"}],"max_completion_tokens":512,"stream":false}""");

        // Streams without stream_options: the gateway splices include_usage in.
        _stream = Encoding.UTF8.GetBytes(
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"Write a haiku about GPUs."}],"stream":true,"max_tokens":64}""");

        if (Inspect(_small) != 0 || Inspect(_large) != 0 || InspectAndSplice() <= _stream.Length)
        {
            throw new InvalidOperationException("benchmark inputs do not inspect as intended");
        }
    }

    [Benchmark]
    public int SmallChat() => Inspect(_small);

    [Benchmark]
    public int LargePrompt16K() => Inspect(_large);

    // The same pass with the prompt's chunk hashes (Inspection/PromptChunks), as the stage runs it.
    [Benchmark]
    public int LargePrompt16KWithChunks()
    {
        RequestInspector.Inspect(_large, _chunks, out var request, out _);
        return request.PromptChunks;
    }

    // Inspect, then write the spliced body into a pooled array, as RequestBody.Apply does.
    [Benchmark]
    public int InspectAndSplice()
    {
        RequestInspector.Inspect(_stream, out var request, out _);
        var splice = request.UsageSplice;
        var length = splice.NewLength(_stream.Length);
        var next = ArrayPool<byte>.Shared.Rent(length);
        splice.Apply(_stream, next);
        ArrayPool<byte>.Shared.Return(next);
        return request.NeedsUsageInjection ? length : 0;
    }

    // scheduler.engine_priority on: the usage splice and `,"priority":N` in the same copy, as
    // RequestBody.Apply writes them.
    [Benchmark]
    public int InspectAndSpliceWithPriority()
    {
        RequestInspector.Inspect(_stream, out var request, out _);
        Span<byte> scratch = stackalloc byte[PrioritySplice.MaxLength];
        var insert = request.PrioritySplice.Format(2, scratch);
        var usage = request.UsageSplice;
        var next = ArrayPool<byte>.Shared.Rent(usage.NewLength(_stream.Length) + insert.Length);
        var writer = new SpliceWriter(_stream, next);
        writer.Splice(usage.Offset, usage.RemoveLength, usage.Insert);
        writer.Splice(request.PrioritySplice.Offset, 0, insert);
        var length = writer.Finish();
        ArrayPool<byte>.Shared.Return(next);
        return length;
    }

    // The `model` value alone, as the inspector turns it into the routing table's key: a new string
    // per request (Utf8JsonReader.GetString), or the one StringPool keeps for the same bytes
    // (issue 15, item 6). Measured side by side in one run.
    [Benchmark]
    public int ModelGetString()
    {
        var reader = new Utf8JsonReader(ModelJson);
        reader.Read();
        return reader.GetString()!.Length;
    }

    [Benchmark]
    public int ModelStringPool()
    {
        var reader = new Utf8JsonReader(ModelJson);
        reader.Read();
        return StringPool.Shared.GetOrAdd(reader.ValueSpan, Encoding.UTF8).Length;
    }

    private static int Inspect(byte[] body) => (int)RequestInspector.Inspect(body, out _, out _);
}
