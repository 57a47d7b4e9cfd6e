using AotProxy.Configuration.Validation;

namespace AotProxy.Configuration;

// Config -> Model: each section's rules (Validation/*Rules), then the Model's factory. Every rule
// is checked and validation keeps going after a failure, so that one run of `aotproxy
// check-config` lists every problem in the file, each with its key and line. Nothing is read
// here: what the file names outside itself comes in as `inputs` (ConfigLoader reads it).
internal static class ConfigValidator
{
    public static ConfigLoadResult Validate(GatewayConfig config, ConfigInputs inputs, TomlKeyMap keys, string source, long revision, DateTimeOffset loadedAt, string digest = "")
    {
        var context = new ValidationContext(source);
        context.Unknown("", config.Unknown);
        var server = ServerRules.Validate(context, config.Server);
        var routing = RoutingRules.Validate(context, config.Routing);
        var health = HealthRules.Validate(context, config.Health);
        var breaker = CircuitBreakerRules.Validate(context, config.CircuitBreaker);
        var retries = RetryRules.Validate(context, config.Retries);
        var scheduler = SchedulerRules.Validate(context, config.Scheduler);
        var limits = LimitsRules.Validate(context, config.Limits);
        var ledger = LedgerRules.Validate(context, config.Ledger);
        var cluster = ClusterRules.Validate(context, config.Cluster);
        var store = StoreRules.Validate(context, config.Store, ledger);
        var telemetry = TelemetryRules.Validate(context, config.Telemetry);
        var responseCache = ResponseCacheRules.Validate(context, config.ResponseCache);
        var workers = WorkerRules.Validate(context, config.Workers, config.Pacing);
        var (models, streamIdleTimeouts) = ModelRules.Validate(context, config.Models, workers);
        var forwarding = ForwardingRules.Validate(context, config.Forwarding, streamIdleTimeouts);
        var classes = ClassRules.Validate(context, config.Classes, scheduler.BucketCount);
        scheduler = scheduler with { Bands = [.. classes.Select(c => c.Priority).Distinct().Order()], Protection = scheduler.Protection.For(classes) };
        var tenants = TenantRules.Validate(context, config.Tenants, classes, implicitClasses: config.Classes.Count == 0);
        var auth = AuthRules.Validate(context, config.Auth, classes);
        var jwt = JwtRules.Validate(context, config.Jwt, inputs);
        var windows = TimeWindowRules.Validate(context, config.TimeWindows, classes, scheduler.BucketCount);
        var prices = PriceRules.Validate(context, config.Prices);
        var adminTokens = AdminTokenRules.Validate(context, config.AdminTokens, server.AdminTokenSha256);
        if (context.HasErrors)
        {
            return ConfigLoadResult.Failure(context.Errors(keys));
        }

        return ConfigLoadResult.Success(GatewaySnapshotFactory.Create(
            revision, loadedAt, source, server, forwarding, routing, health, breaker, retries, scheduler, limits, prices, ledger, workers, classes, tenants, auth, jwt, windows, cluster, digest, adminTokens, store, telemetry, models, responseCache));
    }
}
