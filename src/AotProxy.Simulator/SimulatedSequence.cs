using System.Threading.Channels;

namespace AotProxy.Simulator;

// One request inside the engine. The engine owns the scheduling fields (under its lock); the HTTP
// handler only reads Progress, a one-slot channel of "tokens generated so far". The newest count
// supersedes older ones, so a slow client never makes the engine wait or buffer.
internal sealed class SimulatedSequence
{
    private readonly Channel<int> _progress = Channel.CreateBounded<int>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
        SingleWriter = true,
    });

    private volatile SequenceState _state = SequenceState.Waiting;

    public SimulatedSequence(int promptTokens, ulong[] blockHashes, int plannedTokens, long arrivedAt, int priority = 0, int adapter = -1)
    {
        Adapter = adapter;
        PromptTokens = promptTokens;
        BlockHashes = blockHashes;
        PlannedTokens = plannedTokens;
        ArrivedAt = arrivedAt;
        Priority = priority;
        Context = promptTokens;
    }

    public int PromptTokens { get; }

    public ulong[] BlockHashes { get; }

    // 0 for embeddings: the sequence ends when its prefill does.
    public int PlannedTokens { get; }

    public long ArrivedAt { get; }

    // The request's `priority`; orders the waiting queue under SchedulingPolicy.Priority.
    public int Priority { get; }

    // Its LoRA adapter (LoraSlots), -1 for none.
    public int Adapter { get; }

    public ChannelReader<int> Progress => _progress.Reader;

    public SequenceState State
    {
        get => _state;
        internal set => _state = value;
    }

    // Prompt tokens served from the prefix cache on first admission.
    public int CachedTokens { get; internal set; }

    // Tokens whose KV is in cache. Reset to the cached prefix on preemption (vLLM recomputes).
    internal int Computed { get; set; }

    // Tokens the next token depends on: prompt + generated so far.
    internal int Context { get; set; }

    internal int Generated { get; set; }

    internal int HeldBlocks { get; set; }

    internal int InsertedBlocks { get; set; }

    internal bool Admitted { get; set; }

    internal LinkedListNode<SimulatedSequence>? WaitingNode { get; set; }

    internal bool IsDecoding => Generated > 0 && Context - Computed == 1;

    internal void Publish(int generated) => _progress.Writer.TryWrite(generated);

    internal void Complete() => _progress.Writer.TryComplete();
}
