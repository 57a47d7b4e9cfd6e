using System.Collections.Frozen;
using System.Collections.Immutable;
using AotProxy.Admission.TimeWindows;
using AotProxy.Identity;

namespace AotProxy.Configuration;

// The Model: everything derived from one valid config file, immutable. A request reads the
// current snapshot once, at its start, and uses only it (ConfigStore swaps whole snapshots).
internal sealed class GatewaySnapshot
{
    public GatewaySnapshot(
        long revision,
        DateTimeOffset loadedAt,
        string source,
        ServerModel server,
        ForwardingModel forwarding,
        RoutingModel routing,
        HealthModel health,
        CircuitBreakerModel circuitBreaker,
        RetryModel retries,
        SchedulerModel scheduler,
        ImmutableArray<WorkerModel> workers,
        ImmutableArray<ClassModel> classes,
        ImmutableArray<TenantModel> tenants,
        AuthModel? auth = null,
        JwtModel? jwt = null,
        ImmutableArray<TimeWindowModel> timeWindows = default,
        LimitsModel? limits = null,
        PricesModel? prices = null,
        LedgerModel? ledger = null)
    {
        Revision = revision;
        LoadedAt = loadedAt;
        Source = source;
        Server = server;
        Forwarding = forwarding;
        Routing = routing;
        Health = health;
        CircuitBreaker = circuitBreaker;
        Retries = retries;
        Scheduler = scheduler;
        Workers = workers;
        Classes = classes;
        Tenants = tenants;
        ClassesByName = classes.ToFrozenDictionary(c => c.Name, StringComparer.Ordinal);
        ApiKeys = new ApiKeyIndex(tenants);
        Auth = auth ?? AuthModel.Off;
        Jwt = jwt ?? JwtModel.Off;
        Callers = new CallerResolver(ApiKeys, tenants, ClassesByName, Auth, Jwt);
        TimeWindows = timeWindows.IsDefault ? [] : timeWindows;
        Limits = limits ?? LimitsModel.Default;
        Prices = prices ?? PricesModel.None;
        Ledger = ledger ?? LedgerModel.Off;
        ClassOverrides = TimeWindows.IsEmpty ? TimeWindowSet.Empty : new TimeWindowSet(TimeWindows, scheduler.BucketCount);
    }

    // The same config with other listeners (`aotproxy demo --listen`).
    public GatewaySnapshot WithServer(ServerModel server) =>
        new(Revision, LoadedAt, Source, server, Forwarding, Routing, Health, CircuitBreaker, Retries, Scheduler, Workers, Classes, Tenants, Auth, Jwt, TimeWindows, Limits, Prices, Ledger);

    // Monotonic per process: 1 for the file read at startup, +1 per applied reload.
    public long Revision { get; }

    public DateTimeOffset LoadedAt { get; }

    // The file the snapshot came from ("<embedded demo>" for `aotproxy demo`).
    public string Source { get; }

    public ServerModel Server { get; }

    public ForwardingModel Forwarding { get; }

    public RoutingModel Routing { get; }

    public HealthModel Health { get; }

    public CircuitBreakerModel CircuitBreaker { get; }

    public RetryModel Retries { get; }

    public SchedulerModel Scheduler { get; }

    public LimitsModel Limits { get; }

    // [[prices]]: what a request costs, for the spend budgets and the ledger.
    public PricesModel Prices { get; }

    public LedgerModel Ledger { get; }

    public ImmutableArray<WorkerModel> Workers { get; }

    // With no [[classes]] in the file, one implicit class named "default" (priority 0, weight 1).
    public ImmutableArray<ClassModel> Classes { get; }

    public FrozenDictionary<string, ClassModel> ClassesByName { get; }

    public ImmutableArray<TenantModel> Tenants { get; }

    // Hashed keys -> tenant, built once per snapshot.
    public ApiKeyIndex ApiKeys { get; }

    public AuthModel Auth { get; }

    public JwtModel Jwt { get; }

    // Request -> Caller (API key, JWT, trusted headers, default class), built once per snapshot.
    public CallerResolver Callers { get; }

    // [[time_windows]] in file order (as /api/queues lists them).
    public ImmutableArray<TimeWindowModel> TimeWindows { get; }

    // The same windows by class: what admission applies to a caller's class at request time.
    public TimeWindowSet ClassOverrides { get; }
}
