namespace AotProxy.Routing;

internal enum VllmMetricsStatus : byte
{
    Invalid,  // none of running, waiting, KV usage: not a vLLM /metrics body (HTML, garbage, empty)
    Partial,  // some of them: a truncated body, or a server that is not quite vLLM
    Complete, // all three
}
