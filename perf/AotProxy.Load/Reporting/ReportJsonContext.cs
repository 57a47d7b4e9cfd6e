using System.Text.Json.Serialization;

namespace AotProxy.Load.Reporting;

// Source-generated: no reflection, the same JSON whether the runner is JIT or AOT.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(LoadReport))]
internal sealed partial class ReportJsonContext : JsonSerializerContext
{
}
