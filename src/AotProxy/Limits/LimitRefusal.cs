namespace AotProxy.Limits;

// Which tenant limit refused a request. The names are the `reason` label of
// llm_rate_limiter_rejected_total and, for Requests and Tokens, OpenAI's error `type`.
internal enum LimitRefusal : byte
{
    None,
    Requests,
    Tokens,
    InFlight,
}
