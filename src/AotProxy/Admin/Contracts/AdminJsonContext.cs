using System.Text.Json.Serialization;

namespace AotProxy.Admin.Contracts;

// Every JSON body the admin plane writes goes through this one source-generated context.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(ReloadReport))]
[JsonSerializable(typeof(WorkerReport[]))]
[JsonSerializable(typeof(RoutingStatsResponse))]
[JsonSerializable(typeof(BreakerReport[]))]
[JsonSerializable(typeof(QueuesResponse))]
[JsonSerializable(typeof(TenantReport[]))]
[JsonSerializable(typeof(UsageResponse))]
[JsonSerializable(typeof(ClusterResponse))]
[JsonSerializable(typeof(IssuedKeyResponse))]
[JsonSerializable(typeof(MessageResponse))]
[JsonSerializable(typeof(KeyReport[]))]
[JsonSerializable(typeof(AuditReport[]))]
[JsonSerializable(typeof(DashboardEvent))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;
