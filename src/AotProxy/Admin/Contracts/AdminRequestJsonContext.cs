using System.Text.Json.Serialization;

namespace AotProxy.Admin.Contracts;

// The admin API's request bodies: source-generated, snake_case, and a key the contract does not
// know is an error (a typo such as "max_inflight" must not pass silently, as in the TOML).
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(TenantRequest))]
[JsonSerializable(typeof(KeyRequest))]
[JsonSerializable(typeof(RotateRequest))]
internal sealed partial class AdminRequestJsonContext : JsonSerializerContext;
