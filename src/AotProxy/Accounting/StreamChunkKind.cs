namespace AotProxy.Accounting;

internal enum StreamChunkKind : byte
{
    Other,      // a comment, the role chunk, a finish chunk without text: anything else passed on untouched
    Done,       // data: [DONE]
    WithUsage,  // a chunk that carries a non-null usage and some choices
    UsageOnly,  // "choices":[] and a usage object: the chunk include_usage adds at the end
    Content,    // no usage, and a choice carries generated text: one token (vLLM's default)
    PromptUsage, // the prompt's usage, before the answer (Messages' message_start): final only with a UsagePart after it
    UsagePart,   // usage that completes what the stream's earlier events reported (Messages' message_delta)
}
