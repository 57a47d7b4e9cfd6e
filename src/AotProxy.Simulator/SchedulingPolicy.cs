namespace AotProxy.Simulator;

// vLLM's --scheduling-policy: how the engine's waiting queue is ordered.
public enum SchedulingPolicy
{
    // First come, first served; a request whose `priority` is not 0 is refused (400).
    Fcfs,

    // The lowest `priority` value first, then arrival order, as vLLM's (priority, arrival_time) heap.
    Priority,
}
