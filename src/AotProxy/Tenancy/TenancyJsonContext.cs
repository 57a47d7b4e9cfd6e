using System.Text.Json.Serialization;

namespace AotProxy.Tenancy;

// A stored tenant's model allowlist, as one JSON text column (source-generated: AOT-clean).
[JsonSerializable(typeof(string[]))]
internal sealed partial class TenancyJsonContext : JsonSerializerContext;
