using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// Config: the file as the user wrote it, before validation. Tomlyn fills it through the
// source-generated ConfigTomlContext; ConfigValidator turns it into a GatewaySnapshot.
// Every table keeps a [TomlExtensionData] catch-all because Tomlyn does not reject unmapped
// keys on its own, and a typo must not pass silently (SPEC: Config).
internal sealed record GatewayConfig
{
    public ServerConfig Server { get; init; } = new();

    public RoutingConfig Routing { get; init; } = new();

    public ForwardingConfig Forwarding { get; init; } = new();

    public HealthConfig Health { get; init; } = new();

    public CircuitBreakerConfig CircuitBreaker { get; init; } = new();

    public RetryConfig Retries { get; init; } = new();

    public SchedulerConfig Scheduler { get; init; } = new();

    public LimitsConfig Limits { get; init; } = new();

    public PacingConfig Pacing { get; init; } = new();

    public AuthConfig Auth { get; init; } = new();

    public JwtConfig Jwt { get; init; } = new();

    public LedgerConfig Ledger { get; init; } = new();

    public ClusterConfig Cluster { get; init; } = new();

    public StoreConfig Store { get; init; } = new();

    public TelemetryConfig Telemetry { get; init; } = new();

    public ResponseCacheConfig ResponseCache { get; init; } = new();

    public IReadOnlyList<WorkerConfig> Workers { get; init; } = [];

    public IReadOnlyList<ClassConfig> Classes { get; init; } = [];

    public IReadOnlyList<TenantConfig> Tenants { get; init; } = [];

    public IReadOnlyList<TimeWindowConfig> TimeWindows { get; init; } = [];

    public IReadOnlyList<PriceConfig> Prices { get; init; } = [];

    public IReadOnlyList<AdminTokenConfig> AdminTokens { get; init; } = [];

    public IReadOnlyList<ModelConfig> Models { get; init; } = [];

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
