using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [pacing]: how the gateway paces workers that have their own rate limits ([[workers]] rpm, tpm).
internal sealed record PacingConfig
{
    // Requests kept free below each worker's rpm in any 60 s (and, read as a percentage, tokens
    // below its tpm). 2: clock skew and a request in flight at the window's edge cost about one each.
    public int SafetyMargin { get; init; } = 2;

    // A request that cannot go to its worker within this gets 503 overloaded with Retry-After.
    public string MaxWait { get; init; } = "10s";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
