namespace AotProxy.Routing;

// The values are llm_circuit_breaker_state's (0 closed, 1 open, 2 half-open).
internal enum BreakerState
{
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}
