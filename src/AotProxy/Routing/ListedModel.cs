namespace AotProxy.Routing;

// One entry of a worker's GET /v1/models. vLLM lists a LoRA adapter with its base model as
// `parent` and its source (path or hub id) as `root`; a base model has parent null. MaxModelLen:
// vLLM's `max_model_len` (null for an adapter, which has its parent's).
internal readonly record struct ListedModel(string Id, string? Parent, string? Root, int? MaxModelLen = null)
{
    public bool IsAdapter => Parent is not null;
}
