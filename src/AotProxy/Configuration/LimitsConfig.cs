using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [limits]
internal sealed record LimitsConfig
{
    // The completion tokens a TPM reservation assumes for a request without max_tokens (or
    // max_completion_tokens). 1,024: a long chat answer; usage settles the reservation anyway.
    public long DefaultMaxTokens { get; init; } = 1024;

    // BudgetOverrunModes: "cap" (default) or "reject".
    public string BudgetOverrun { get; init; } = BudgetOverrunModes.Cap;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
