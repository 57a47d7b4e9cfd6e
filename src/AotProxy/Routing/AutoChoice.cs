namespace AotProxy.Routing;

// AutoModel's answer: the pool, or why there is none.
internal readonly record struct AutoChoice(WorkerPool? Pool, AutoRefusal Refusal);
