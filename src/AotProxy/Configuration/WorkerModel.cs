using System.Collections.Immutable;

namespace AotProxy.Configuration;

internal sealed record WorkerModel(
    string Name,
    Uri Url,                        // base URL, always ending in "/"
    ImmutableArray<string> Models,  // empty: discovered from GET /v1/models
    int MaxConcurrency,
    int Weight,
    string ApiKey)                  // "": no Authorization header upstream
{
    // Worker state survives a reload only when this identity is unchanged (STYLE.md).
    public bool SameIdentity(WorkerModel other) =>
        Name == other.Name && Url == other.Url;
}
