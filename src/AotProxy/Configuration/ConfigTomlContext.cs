using System.Text.Json.Serialization;
using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// Source-generated, so reading the config needs no reflection and stays AOT-clean.
[TomlSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[TomlSerializable(typeof(GatewayConfig))]
internal sealed partial class ConfigTomlContext : TomlSerializerContext
{
}
