using System.Collections.Frozen;
using System.Collections.Immutable;
using AotProxy.Admission.TimeWindows;
using AotProxy.Identity;

namespace AotProxy.Configuration;

// Configuration's own factory for the Model: from the validated sections (ConfigValidator) to a
// GatewaySnapshot with its indexes built once: classes and tenants by name, the API key index,
// the JWT validator, the caller resolver and the time windows by class. No record builds them
// in its constructor, so a snapshot is only ever made here.
internal static class GatewaySnapshotFactory
{
    public static GatewaySnapshot Create(
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
        LimitsModel limits,
        PricesModel prices,
        LedgerModel ledger,
        ImmutableArray<WorkerModel> workers,
        ImmutableArray<ClassModel> classes,
        ImmutableArray<TenantModel> tenants,
        AuthModel auth,
        JwtModel jwt,
        ImmutableArray<TimeWindowModel> timeWindows,
        ClusterModel? cluster = null,
        string digest = "",
        ImmutableArray<AdminTokenModel> adminTokens = default,
        StoreModel? store = null,
        TelemetryModel? telemetry = null,
        ModelCatalog? models = null,
        ResponseCacheModel? responseCache = null)
    {
        var classesByName = classes.ToFrozenDictionary(c => c.Name, StringComparer.Ordinal);
        var tenantsByName = ByName(tenants);
        var apiKeys = new ApiKeyIndex(tenants);
        var jwtValidator = jwt.Enabled ? new JwtValidator(jwt, tenantsByName, classesByName) : null;
        return new GatewaySnapshot
        {
            Revision = revision,
            LoadedAt = loadedAt,
            Source = source,
            Server = server,
            Forwarding = forwarding,
            Routing = routing,
            Health = health,
            CircuitBreaker = circuitBreaker,
            Retries = retries,
            Scheduler = scheduler,
            Limits = limits,
            Prices = prices,
            Ledger = ledger,
            Cluster = cluster ?? ClusterModel.Off,
            Store = store ?? StoreModel.Off,
            Telemetry = telemetry ?? TelemetryModel.Default,
            Models = models ?? ModelCatalog.Empty,
            ResponseCache = responseCache ?? ResponseCacheModel.Default,
            Digest = digest,
            Workers = workers,
            Classes = classes,
            ClassesByName = classesByName,
            Tenants = tenants,
            ApiKeys = apiKeys,
            Auth = auth,
            AdminTokens = adminTokens.IsDefault ? DefaultToken(server) : adminTokens,
            Jwt = jwt,
            Callers = new CallerResolver(apiKeys, tenantsByName, classesByName, auth, jwtValidator),
            TimeWindows = timeWindows,
            ClassOverrides = timeWindows.IsEmpty ? TimeWindowSet.Empty : new TimeWindowSet(timeWindows, scheduler.BucketCount),
        };
    }

    // The same config with other listeners (`aotproxy demo --listen`): nothing derived depends on them.
    public static GatewaySnapshot WithServer(GatewaySnapshot snapshot, ServerModel server) => new()
    {
        Revision = snapshot.Revision,
        LoadedAt = snapshot.LoadedAt,
        Source = snapshot.Source,
        Server = server,
        Forwarding = snapshot.Forwarding,
        Routing = snapshot.Routing,
        Health = snapshot.Health,
        CircuitBreaker = snapshot.CircuitBreaker,
        Retries = snapshot.Retries,
        Scheduler = snapshot.Scheduler,
        Limits = snapshot.Limits,
        Prices = snapshot.Prices,
        Ledger = snapshot.Ledger,
        Cluster = snapshot.Cluster,
        Store = snapshot.Store,
        Telemetry = snapshot.Telemetry,
        Models = snapshot.Models,
        ResponseCache = snapshot.ResponseCache,
        Digest = snapshot.Digest,
        Workers = snapshot.Workers,
        Classes = snapshot.Classes,
        ClassesByName = snapshot.ClassesByName,
        Tenants = snapshot.Tenants,
        ApiKeys = snapshot.ApiKeys,
        Auth = snapshot.Auth,
        AdminTokens = snapshot.AdminTokens,
        StoreTenants = snapshot.StoreTenants,
        Jwt = snapshot.Jwt,
        Callers = snapshot.Callers,
        TimeWindows = snapshot.TimeWindows,
        ClassOverrides = snapshot.ClassOverrides,
    };

    // The file's snapshot with the tenant store's tenants added (after the file's, whose names they
    // never take: TenantDirectory checks) and its issued keys: the tenants' indexes are rebuilt, the
    // rest is the file's as it was. What the identify stage reads then holds both, so a key issued
    // or revoked through the admin API needs no lookup of its own per request.
    public static GatewaySnapshot WithStore(GatewaySnapshot file, ImmutableArray<TenantModel> storeTenants, IReadOnlyList<IssuedKey> issued)
    {
        var tenants = file.Tenants.AddRange(storeTenants);
        var tenantsByName = ByName(tenants);
        var apiKeys = new ApiKeyIndex(tenants, issued);
        var jwtValidator = file.Jwt.Enabled ? new JwtValidator(file.Jwt, tenantsByName, file.ClassesByName) : null;
        return new GatewaySnapshot
        {
            Revision = file.Revision,
            LoadedAt = file.LoadedAt,
            Source = file.Source,
            Server = file.Server,
            Forwarding = file.Forwarding,
            Routing = file.Routing,
            Health = file.Health,
            CircuitBreaker = file.CircuitBreaker,
            Retries = file.Retries,
            Scheduler = file.Scheduler,
            Limits = file.Limits,
            Prices = file.Prices,
            Ledger = file.Ledger,
            Cluster = file.Cluster,
            Store = file.Store,
            Telemetry = file.Telemetry,
            Models = file.Models,
            ResponseCache = file.ResponseCache,
            Digest = file.Digest,
            Workers = file.Workers,
            Classes = file.Classes,
            ClassesByName = file.ClassesByName,
            Tenants = tenants,
            ApiKeys = apiKeys,
            Auth = file.Auth,
            AdminTokens = file.AdminTokens,
            StoreTenants = storeTenants.Select(t => t.Name).ToFrozenSet(StringComparer.Ordinal),
            Jwt = file.Jwt,
            Callers = new CallerResolver(apiKeys, tenantsByName, file.ClassesByName, file.Auth, jwtValidator),
            TimeWindows = file.TimeWindows,
            ClassOverrides = file.ClassOverrides,
        };
    }

    // A snapshot built without [[admin_tokens]]: server.admin_token_sha256 alone, as before them.
    private static ImmutableArray<AdminTokenModel> DefaultToken(ServerModel server) =>
        server.AdminTokenSha256.IsEmpty ? [] : [new AdminTokenModel(AdminTokenModel.DefaultId, server.AdminTokenSha256, AdminRole.Admin)];

    // The first of each name: a file with a duplicate is rejected, but its snapshot is still built
    // so that validation can go on, and ToFrozenDictionary would throw on the duplicate.
    private static FrozenDictionary<string, TenantModel> ByName(ImmutableArray<TenantModel> tenants)
    {
        var byName = new Dictionary<string, TenantModel>(tenants.Length, StringComparer.Ordinal);
        foreach (var tenant in tenants)
        {
            byName.TryAdd(tenant.Name, tenant);
        }

        return byName.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
