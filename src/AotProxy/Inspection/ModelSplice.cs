namespace AotProxy.Inspection;

// Where the body's `model` value is (the last one: Python's json keeps the last of duplicate
// keys, so that is the one vLLM reads), quotes included: an alias or model "auto" puts the served
// model's name there (WorkerPool.ModelJson), so the worker gets a name it serves.
internal readonly record struct ModelSplice(int Offset, int Length);
