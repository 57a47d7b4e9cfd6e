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
        StoreModel? store = null)
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
            Digest = digest,
            Workers = workers,
            Classes = classes,
            ClassesByName = classesByName,
            Tenants = tenants,
            ApiKeys = apiKeys,
            Auth = auth,
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
        Digest = snapshot.Digest,
        Workers = snapshot.Workers,
        Classes = snapshot.Classes,
        ClassesByName = snapshot.ClassesByName,
        Tenants = snapshot.Tenants,
        ApiKeys = snapshot.ApiKeys,
        Auth = snapshot.Auth,
        Jwt = snapshot.Jwt,
        Callers = snapshot.Callers,
        TimeWindows = snapshot.TimeWindows,
        ClassOverrides = snapshot.ClassOverrides,
    };

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
