using System.Collections.Immutable;

namespace AotProxy.Simulator;

// Read once when a worker starts, except Faults, which the engine and handler read on every request.
public sealed class SimulatorOptions
{
    public string Name { get; set; } = "sim-0";

    public string Model { get; set; } = "meta-llama/Llama-3.1-8B-Instruct";

    // vLLM's --max-num-seqs: sequences decoded together in one batch.
    public int MaxNumSeqs { get; set; } = 64;

    // --max-num-queued-reqs: a bound on the waiting queue, as a deployment that caps vLLM's
    // (unbounded) queue has: a request that would wait behind this many others (it finds
    // MaxNumSeqs + N requests in the engine) gets 503 at once, counted in SimulatorStats.QueueFull.
    // null: unbounded, as vLLM itself.
    public int? MaxNumQueuedReqs { get; set; }

    // The earlier name of MaxNumQueuedReqs (--max-num-waiting), kept for the scripts that use it.
    public int? MaxNumWaiting
    {
        get => MaxNumQueuedReqs;
        set => MaxNumQueuedReqs = value;
    }

    // --max-num-queued-tokens: a bound on the waiting requests' prompt tokens: a request that would
    // wait and take the sum past it gets 503 at once (QueueFull too). null: unbounded.
    public long? MaxNumQueuedTokens { get; set; }

    // 8192 blocks x 16 tokens = 131072 tokens: Llama 3.1's full context fits exactly once.
    public int NumGpuBlocks { get; set; } = 8192;

    public int BlockSize { get; set; } = 16;

    public double SpeedFactor { get; set; } = 1.0;

    // 20k tok/s: an 8B model on one A100 prefills a 2k-token prompt in about 100 ms.
    public double PrefillTokensPerSecond { get; set; } = 20_000;

    // 100 tok/s: single-stream decode of an 8B bf16 model on one A100 (about 10 ms per step).
    public double DecodeTokensPerSecond { get; set; } = 100;

    // vLLM's --max-num-batched-tokens: tokens computed in one engine step; longer prefills are chunked.
    public int MaxNumBatchedTokens { get; set; } = 8192;

    public int DefaultMaxTokens { get; set; } = 64;

    public MetricsFormat MetricsFormat { get; set; } = MetricsFormat.V1;

    // vLLM's --scheduling-policy; fcfs is vLLM's default too.
    public SchedulingPolicy SchedulingPolicy { get; set; } = SchedulingPolicy.Fcfs;

    // A hosted API's own limits (see SimulatedRateLimit): above them, 429 rate_limit_exceeded
    // with retry-after, as OpenAI answers. 0: unlimited, as vLLM is.
    public long RequestsPerMinute { get; set; }

    public long TokensPerMinute { get; set; }

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    // vLLM's --otlp-traces-endpoint: each request's `llm_request` span, the child of the
    // traceparent it came with, goes to this URL, a receiver's /v1/traces (OTLP/HTTP protobuf).
    // null: no spans.
    public Uri? OtlpTracesEndpoint { get; set; }

    public SimulatorFaults Faults { get; } = new();

    // vLLM's --lora-modules: the LoRA adapters served on top of Model, by name. Listed in
    // /v1/models with Model as parent, accepted as a request's `model`.
    public ImmutableArray<string> LoraModules { get; set; } = [];

    // vLLM's --max-loras: adapters resident at once (LoraSlots).
    public int MaxLoras { get; set; } = 1;

    // The swap cost of loading an adapter that is not resident. 150 ms: a rank-16 adapter of an
    // 8B model (~50 MB) read from the host's page cache and copied to the GPU.
    public TimeSpan LoraLoad { get; set; } = TimeSpan.FromMilliseconds(150);

    // Tokens one sequence may hold: the KV budget, capped at Llama 3.1's 128k context.
    internal int MaxModelLen => (int)Math.Min((long)NumGpuBlocks * BlockSize, 131_072);

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Name);
        ArgumentException.ThrowIfNullOrWhiteSpace(Model);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxNumSeqs, 1);
        if (MaxNumQueuedReqs is { } maxNumQueuedReqs)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(maxNumQueuedReqs, nameof(MaxNumQueuedReqs));
        }

        if (MaxNumQueuedTokens is { } maxNumQueuedTokens)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(maxNumQueuedTokens, nameof(MaxNumQueuedTokens));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(NumGpuBlocks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(BlockSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxNumBatchedTokens, MaxNumSeqs);
        ArgumentOutOfRangeException.ThrowIfLessThan(DefaultMaxTokens, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(RequestsPerMinute);
        ArgumentOutOfRangeException.ThrowIfNegative(TokensPerMinute);
        ThrowIfNotPositive(SpeedFactor);
        ThrowIfNotPositive(PrefillTokensPerSecond);
        ThrowIfNotPositive(DecodeTokensPerSecond);
        if (SchedulingPolicy is not (SchedulingPolicy.Fcfs or SchedulingPolicy.Priority))
        {
            throw new ArgumentOutOfRangeException(nameof(SchedulingPolicy), SchedulingPolicy, "Must be Fcfs or Priority.");
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (LoraModules.IsDefault)
        {
            throw new ArgumentException("LoRA modules must not be default.", nameof(LoraModules));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxLoras, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(LoraLoad, TimeSpan.Zero);
        if (LoraModules.Any(string.IsNullOrWhiteSpace) || LoraModules.Contains(Model) || LoraModules.Distinct().Count() != LoraModules.Length)
        {
            throw new ArgumentException("LoRA modules must be distinct, non-empty names other than the model's.", nameof(LoraModules));
        }
    }

    private static void ThrowIfNotPositive(double value, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(value))] string? name = null)
    {
        if (!(value > 0) || double.IsInfinity(value))
        {
            throw new ArgumentOutOfRangeException(name, value, "Must be a positive, finite number.");
        }
    }
}
