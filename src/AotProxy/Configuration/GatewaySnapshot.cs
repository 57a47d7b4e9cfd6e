using System.Collections.Frozen;
using System.Collections.Immutable;
using AotProxy.Admission.TimeWindows;
using AotProxy.Identity;

namespace AotProxy.Configuration;

// The Model: everything derived from one valid config file, immutable. Built by
// GatewaySnapshotFactory (the sections by ConfigValidator, the indexes from them); this class only
// holds them. A request reads the snapshot once, through the GatewayView it starts on.
internal sealed class GatewaySnapshot
{
    // [[models]]: aliases and the served models' own settings.
    public ModelCatalog Models { get; init; } = ModelCatalog.Empty;

    // Monotonic per process: 1 for the file read at startup, +1 per applied reload.
    public required long Revision { get; init; }

    public required DateTimeOffset LoadedAt { get; init; }

    // The file the snapshot came from ("<embedded demo>" for `aotproxy demo`).
    public required string Source { get; init; }

    public required ServerModel Server { get; init; }

    public required ForwardingModel Forwarding { get; init; }

    public required RoutingModel Routing { get; init; }

    public required HealthModel Health { get; init; }

    public required CircuitBreakerModel CircuitBreaker { get; init; }

    public required RetryModel Retries { get; init; }

    public required SchedulerModel Scheduler { get; init; }

    public required LimitsModel Limits { get; init; }

    // [[prices]]: what a request costs, for the spend budgets and the ledger.
    public required PricesModel Prices { get; init; }

    public required LedgerModel Ledger { get; init; }

    // [cluster]: Off for a gateway that runs alone.
    public ClusterModel Cluster { get; init; } = ClusterModel.Off;

    // [store]: Off for a gateway whose ledger is its local file only.
    public StoreModel Store { get; init; } = StoreModel.Off;

    // [telemetry]: the cap on tenant series.
    public TelemetryModel Telemetry { get; init; } = TelemetryModel.Default;

    // [response_cache]: the exact response cache's bounds (Caching/).
    public ResponseCacheModel ResponseCache { get; init; } = ResponseCacheModel.Default;

    // What replicas compare to find one on another config (ConfigDigest): the same on every
    // replica that loaded the same policy, unlike Revision. "" for a hand-built snapshot.
    public string Digest { get; init; } = string.Empty;

    public required ImmutableArray<WorkerModel> Workers { get; init; }

    // With no [[classes]] in the file, one implicit class named "default" (priority 0, weight 1).
    public required ImmutableArray<ClassModel> Classes { get; init; }

    public required FrozenDictionary<string, ClassModel> ClassesByName { get; init; }

    public required ImmutableArray<TenantModel> Tenants { get; init; }

    // Hashed keys -> tenant.
    public required ApiKeyIndex ApiKeys { get; init; }

    public required AuthModel Auth { get; init; }

    // server.admin_token_sha256 (id "default") and [[admin_tokens]]; empty: the admin API is open.
    public ImmutableArray<AdminTokenModel> AdminTokens { get; init; } = [];

    // The tenants and keys of the tenant store (Tenancy/) merged into this snapshot: none for a
    // snapshot read from the file alone. Tenants above holds the file's and the store's.
    public FrozenSet<string> StoreTenants { get; init; } = FrozenSet<string>.Empty;

    public required JwtModel Jwt { get; init; }

    // Request -> Caller (API key, JWT, trusted headers, default class).
    public required CallerResolver Callers { get; init; }

    // [[time_windows]] in file order (as /api/queues lists them).
    public required ImmutableArray<TimeWindowModel> TimeWindows { get; init; }

    // The same windows by class: what admission applies to a caller's class at request time.
    public required TimeWindowSet ClassOverrides { get; init; }
}
