namespace AotProxy.Routing;

// One entry of a worker's GET /v1/models. vLLM lists a LoRA adapter with its base model as
// `parent` and its source (path or hub id) as `root`; a base model has parent null.
// MaxModelLen: vLLM's `max_model_len` (the context length, for model "auto"); 0 when absent.
internal readonly record struct ListedModel(string Id, string? Parent, string? Root, int MaxModelLen = 0)
{
    public bool IsAdapter => Parent is not null;
}
