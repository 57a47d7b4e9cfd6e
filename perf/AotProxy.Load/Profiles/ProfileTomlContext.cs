using System.Text.Json.Serialization;
using Tomlyn.Serialization;

namespace AotProxy.Load.Profiles;

// Source-generated like the gateway's ConfigTomlContext: no reflection, snake_case keys.
[TomlSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[TomlSerializable(typeof(ProfileConfig))]
internal sealed partial class ProfileTomlContext : TomlSerializerContext
{
}
