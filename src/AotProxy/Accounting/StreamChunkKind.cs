namespace AotProxy.Accounting;

internal enum StreamChunkKind : byte
{
    Other,      // a token chunk, a comment, anything the gateway passes on untouched
    Done,       // data: [DONE]
    WithUsage,  // a chunk that carries a non-null usage and some choices
    UsageOnly,  // "choices":[] and a usage object: the chunk include_usage adds at the end
}
