using Tomlyn.Serialization;

namespace AotProxy.Load.Profiles;

// [scenario]: what is called, and how.
internal sealed record ScenarioConfig
{
    public string Name { get; init; } = "";

    public string Description { get; init; } = "";

    public string Target { get; init; } = "http://127.0.0.1:8080";

    public string Path { get; init; } = "/v1/chat/completions";

    public string Model { get; init; } = "meta-llama/Llama-3.1-8B-Instruct";

    // Used by [[mix]] entries without their own api_key, unless --key is given.
    public string ApiKey { get; init; } = "";

    // Whole-request limit; a stream that outlives it counts as a timeout error.
    public string Timeout { get; init; } = "60s";

    // Requests in flight beyond this are dropped and counted ("dropped: client saturated"), so a
    // stalled target can never make the schedule wait (that would be coordinated omission).
    public int MaxInFlight { get; init; } = 10_000;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
