using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using AotProxy.Accounting;
using AotProxy.Admission.TimeWindows;
using AotProxy.Identity;

namespace AotProxy.Configuration;

// Config -> Model. Checks every rule and keeps going after a failure, so that one run of
// `aotproxy check-config` lists every problem in the file, each with its key and line.
internal sealed class ConfigValidator
{
    // The class tenants get when the file declares no [[classes]] (SPEC: Config).
    public const string DefaultClassName = "default";
    public const int MaxPriority = 9;

    // scheduler.queue_capacity's ceiling: 2^20 waiters per queue is far past any useful backlog.
    private const int BoundedQueueMax = 1 << 20;

    // Claims the validator reads itself; a tenant or class claim by one of these names would be
    // read twice with two meanings.
    private static readonly string[] RegisteredClaims = ["exp", "nbf", "iat", "iss", "aud"];

    // 10 minutes: a larger skew keeps expired tokens alive for longer than clocks ever drift.
    private static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(10);

    // A time window's longest occurrence: a weekly schedule can cover its whole week, and the
    // look-back for the running occurrence stays bounded.
    private static readonly TimeSpan MaxWindowDuration = TimeSpan.FromDays(7);

    // ledger.*: a minute of rows is the most a kill -9 should lose; 100k rows a commit of ~0.2 s;
    // 2^24 queued rows ~2.5 GB, past any memory a gateway should hold for its ledger.
    private static readonly TimeSpan MaxLedgerInterval = TimeSpan.FromMinutes(1);
    private const int MaxLedgerBatch = 100_000;
    private const int MaxLedgerQueue = 1 << 24;

    // (path, message); the lines are looked up once at the end, in one scan of the file.
    private readonly List<(string Path, string Message)> _errors = [];

    private ConfigValidator()
    {
    }

    // With the default ten buckets: what a valid snapshot never needs, but a lookup can fall back on.
    public static ClassModel DefaultClass { get; } = Implicit(bucketCount: 10);

    // The implicit class of a file without [[classes]]: priority 0, so its buckets are P0's.
    public static ClassModel Implicit(int bucketCount)
    {
        var (first, last) = ClassModel.BucketsOf(0, bucketCount);
        return new(DefaultClassName, Priority: 0, Weight: 1, MaxQueueWait: TimeSpan.FromSeconds(30), MaxUtilization: 1.0, first, last, Strict: false);
    }

    public static ConfigLoadResult Validate(GatewayConfig config, TomlKeyMap keys, string source, long revision, DateTimeOffset loadedAt)
    {
        var validator = new ConfigValidator();
        var snapshot = validator.Build(config, source, revision, loadedAt);
        if (validator._errors.Count == 0)
        {
            return ConfigLoadResult.Success(snapshot);
        }

        var lines = keys.LinesOf([.. validator._errors.Select(e => e.Path)]);
        return ConfigLoadResult.Failure(validator._errors.Select((e, i) => new ConfigError(lines[i], e.Path, e.Message)));
    }

    private GatewaySnapshot Build(GatewayConfig config, string source, long revision, DateTimeOffset loadedAt)
    {
        Unknown("", config.Unknown);
        var server = Server(config.Server);
        var routing = Routing(config.Routing);
        var forwarding = Forwarding(config.Forwarding);
        var health = Health(config.Health);
        var breaker = CircuitBreaker(config.CircuitBreaker);
        var retries = Retries(config.Retries);
        var scheduler = Scheduler(config.Scheduler);
        var limits = Limits(config.Limits);
        var ledger = Ledger(config.Ledger, source);
        var workers = Workers(config.Workers, config.Pacing);
        var classes = Classes(config.Classes, scheduler.BucketCount);
        var tenants = Tenants(config.Tenants, classes, implicitClasses: config.Classes.Count == 0);
        var auth = Auth(config.Auth, classes);
        var jwt = Jwt(config.Jwt, source);
        var windows = TimeWindows(config.TimeWindows, classes, scheduler.BucketCount);
        var prices = Prices(config.Prices);
        return GatewaySnapshotFactory.Create(revision, loadedAt, source, server, forwarding, routing, health, breaker, retries, scheduler, limits, prices, ledger, workers, classes, tenants, auth, jwt, windows);
    }

    private ServerModel Server(ServerConfig server)
    {
        Unknown("server", server.Unknown);
        var listen = EndPoint("server.listen", server.Listen);
        var admin = EndPoint("server.admin_listen", server.AdminListen);
        if (listen is not null && admin is not null && listen.Port != 0 && listen.Equals(admin))
        {
            Error("server.admin_listen", $"\"{server.AdminListen}\" is also server.listen; the admin plane needs its own port");
        }

        var h2c = server.H2cListen.Length == 0 ? null : EndPoint("server.h2c_listen", server.H2cListen);
        if (h2c is not null && h2c.Port != 0 && (h2c.Equals(listen) || h2c.Equals(admin)))
        {
            Error("server.h2c_listen", $"\"{server.H2cListen}\" is already used by server.listen or server.admin_listen; h2c needs its own port");
        }

        var token = Sha256("server.admin_token_sha256", server.AdminTokenSha256, allowEmpty: true);
        if (server.MaxRequestBytes <= 0)
        {
            Error("server.max_request_bytes", $"must be greater than 0 (got {server.MaxRequestBytes})");
        }

        var grace = Positive("server.shutdown_grace", server.ShutdownGrace);
        if (server.MaxConnections < 0)
        {
            Error("server.max_connections", $"must be 0 (no limit) or more (got {server.MaxConnections})");
        }

        // 1 KiB: a request line and a Host header; 1 MiB: a thousand clients sending headers
        // slowly would already hold a GiB.
        if (server.MaxHeaderBytes is < 1024 or > 1024 * 1024)
        {
            Error("server.max_header_bytes", $"must be 1024 to 1048576 bytes (got {server.MaxHeaderBytes})");
        }

        return new ServerModel(
            listen ?? new IPEndPoint(IPAddress.Loopback, 8080),
            admin ?? new IPEndPoint(IPAddress.Loopback, 9090),
            token,
            server.MaxRequestBytes,
            grace,
            h2c,
            Math.Max(server.MaxConnections, 0),
            Math.Clamp(server.MaxHeaderBytes, 1024, 1024 * 1024));
    }

    private RoutingModel Routing(RoutingConfig routing)
    {
        Unknown("routing", routing.Unknown);
        if (!RoutingStrategyNames.IsKnown(routing.Strategy))
        {
            Error("routing.strategy", $"unknown strategy \"{routing.Strategy}\"; use one of {string.Join(", ", RoutingStrategyNames.All)}");
        }

        var interval = Positive("routing.metrics_interval", routing.MetricsInterval);
        var timeout = interval * 0.8;
        if (routing.MetricsTimeout.Length > 0)
        {
            timeout = Positive("routing.metrics_timeout", routing.MetricsTimeout);
            if (timeout >= interval)
            {
                Error("routing.metrics_timeout", $"must be shorter than routing.metrics_interval ({routing.MetricsInterval}), or scrapes overlap");
            }
        }

        var weights = new ScoreWeights(
            NonNegative("routing.weight_waiting", routing.WeightWaiting),
            NonNegative("routing.weight_running", routing.WeightRunning),
            NonNegative("routing.weight_kv", routing.WeightKv),
            NonNegative("routing.weight_latency", routing.WeightLatency),
            NonNegative("routing.weight_error", routing.WeightError));
        var ratio = NonNegative("routing.affinity_max_ratio", routing.AffinityMaxRatio);
        if (ratio < 1)
        {
            Error("routing.affinity_max_ratio", $"must be at least 1 (got {Number(routing.AffinityMaxRatio)}); below 1 the affine worker would lose to a busier one");
        }

        AtLeast("routing.virtual_nodes", routing.VirtualNodes, 1);
        if (routing.VirtualNodes > 10_000)
        {
            Error("routing.virtual_nodes", $"must be at most 10000 (got {routing.VirtualNodes}); 150 already spreads keys within a few percent");
        }

        var epsilon = NonNegative("routing.epsilon", routing.Epsilon);
        if (epsilon > 1)
        {
            Error("routing.epsilon", $"is a probability: 0..1 (got {Number(routing.Epsilon)})");
        }

        var learningRate = routing.LearningRate;
        if (!(learningRate > 0 && learningRate <= 1))
        {
            Error("routing.learning_rate", $"must be in (0, 1] (got {Number(learningRate)})");
        }

        return new RoutingModel(
            routing.Strategy,
            interval,
            timeout,
            weights,
            NonNegative("routing.prefix_bonus", routing.PrefixBonus),
            Positive("routing.prefix_ttl", routing.PrefixTtl),
            NonNegative("routing.affinity_max_gap", routing.AffinityMaxGap),
            ratio,
            routing.HashHeader.Trim(),
            routing.VirtualNodes,
            NonNegative("routing.hash_load_factor", routing.HashLoadFactor),
            epsilon,
            learningRate);
    }

    private HealthModel Health(HealthConfig health)
    {
        Unknown("health", health.Unknown);
        var interval = Positive("health.interval", health.Interval);
        var timeout = Positive("health.timeout", health.Timeout);
        if (timeout > interval)
        {
            Error("health.timeout", $"must not be longer than health.interval ({health.Interval})");
        }

        if (!health.Path.StartsWith('/'))
        {
            Error("health.path", $"must start with '/' (got \"{health.Path}\")");
        }

        AtLeast("health.unhealthy_threshold", health.UnhealthyThreshold, 1);
        AtLeast("health.healthy_threshold", health.HealthyThreshold, 1);
        return new HealthModel(interval, timeout, health.Path, health.UnhealthyThreshold, health.HealthyThreshold);
    }

    private CircuitBreakerModel CircuitBreaker(CircuitBreakerConfig breaker)
    {
        Unknown("circuit_breaker", breaker.Unknown);
        AtLeast("circuit_breaker.failure_threshold", breaker.FailureThreshold, 1);
        AtLeast("circuit_breaker.success_threshold", breaker.SuccessThreshold, 1);
        AtLeast("circuit_breaker.half_open_max_requests", breaker.HalfOpenMaxRequests, 1);
        return new CircuitBreakerModel(
            breaker.FailureThreshold,
            breaker.SuccessThreshold,
            Positive("circuit_breaker.open_timeout", breaker.OpenTimeout),
            breaker.HalfOpenMaxRequests,
            Positive("circuit_breaker.slow_call_threshold", breaker.SlowCallThreshold));
    }

    private RetryModel Retries(RetryConfig retries)
    {
        Unknown("retries", retries.Unknown);
        AtLeast("retries.max_attempts", retries.MaxAttempts, 1);
        if (retries.MaxAttempts > 10)
        {
            Error("retries.max_attempts", $"must be at most 10 (got {retries.MaxAttempts}); more only hides a broken fleet");
        }

        var baseDelay = Positive("retries.backoff_base", retries.BackoffBase);
        var maxDelay = Positive("retries.backoff_max", retries.BackoffMax);
        if (maxDelay < baseDelay)
        {
            Error("retries.backoff_max", $"must not be shorter than retries.backoff_base ({retries.BackoffBase})");
        }

        var ratio = NonNegative("retries.budget_ratio", retries.BudgetRatio);
        if (ratio > 1)
        {
            Error("retries.budget_ratio", $"must be in 0..1 (got {Number(retries.BudgetRatio)}); 0.2 lets retries add 20% load");
        }

        return new RetryModel(retries.MaxAttempts, baseDelay, maxDelay, ratio);
    }

    private ForwardingModel Forwarding(ForwardingConfig forwarding)
    {
        Unknown("forwarding", forwarding.Unknown);
        return new ForwardingModel(
            Positive("forwarding.connect_timeout", forwarding.ConnectTimeout),
            Positive("forwarding.activity_timeout", forwarding.ActivityTimeout));
    }

    private SchedulerModel Scheduler(SchedulerConfig scheduler)
    {
        Unknown("scheduler", scheduler.Unknown);
        if (!SchedulerPolicyNames.IsKnown(scheduler.Policy))
        {
            Error("scheduler.policy", $"unknown policy \"{scheduler.Policy}\"; use one of {string.Join(", ", SchedulerPolicyNames.All)}");
        }

        var capacity = scheduler.QueueCapacity;
        if (capacity is < 1 or > BoundedQueueMax)
        {
            Error("scheduler.queue_capacity", $"must be 1 to {BoundedQueueMax} (got {capacity})");
            capacity = 1024;
        }

        if (!(scheduler.AgingFactor > 0) || double.IsInfinity(scheduler.AgingFactor))
        {
            Error("scheduler.aging_factor", $"must be greater than 0 (got {Number(scheduler.AgingFactor)})");
        }

        return new SchedulerModel(
            scheduler.Policy,
            capacity,
            NonNegative("scheduler.input_weight", scheduler.InputWeight),
            NonNegative("scheduler.output_weight", scheduler.OutputWeight),
            scheduler.AgingFactor > 0 ? scheduler.AgingFactor : 2.0,
            BucketShares(scheduler),
            scheduler.AdaptiveSlots,
            AdaptiveMin(scheduler.AdaptiveMin),
            AdaptiveMax(scheduler.AdaptiveMax),
            scheduler.EnginePriority);
    }

    private LimitsModel Limits(LimitsConfig limits)
    {
        Unknown("limits", limits.Unknown);
        var reject = string.Equals(limits.BudgetOverrun, BudgetOverrunModes.Reject, StringComparison.Ordinal);
        if (!reject && !string.Equals(limits.BudgetOverrun, BudgetOverrunModes.Cap, StringComparison.Ordinal))
        {
            Error("limits.budget_overrun", $"unknown mode \"{limits.BudgetOverrun}\"; use \"{BudgetOverrunModes.Cap}\" or \"{BudgetOverrunModes.Reject}\"");
        }

        if (limits.DefaultMaxTokens is < 1 or > LimitsModel.MaxPerMinute)
        {
            Error("limits.default_max_tokens", $"must be 1 to {LimitsModel.MaxPerMinute} (got {limits.DefaultMaxTokens})");
            return LimitsModel.Default;
        }

        return new LimitsModel(limits.DefaultMaxTokens, reject);
    }

    private LedgerModel Ledger(LedgerConfig ledger, string source)
    {
        Unknown("ledger", ledger.Unknown);
        var interval = Positive("ledger.batch_interval", ledger.BatchInterval);
        if (interval > MaxLedgerInterval)
        {
            Error("ledger.batch_interval", $"must be at most {Duration.Format(MaxLedgerInterval)} (got {ledger.BatchInterval}); a kill -9 loses up to one interval of rows");
        }

        if (ledger.BatchSize is < 1 or > MaxLedgerBatch)
        {
            Error("ledger.batch_size", $"must be 1 to {MaxLedgerBatch} (got {ledger.BatchSize})");
        }

        if (ledger.QueueCapacity is < 1 or > MaxLedgerQueue)
        {
            Error("ledger.queue_capacity", $"must be 1 to {MaxLedgerQueue} (got {ledger.QueueCapacity})");
        }
        else if (ledger.QueueCapacity < ledger.BatchSize)
        {
            Error("ledger.queue_capacity", $"must be at least ledger.batch_size ({ledger.BatchSize}), or a full batch can never wait in it");
        }

        var path = ledger.Path.Trim();
        if (path.Length > 0)
        {
            if (path.Contains('\0', StringComparison.Ordinal) || path.EndsWith('/') || path.EndsWith('\\'))
            {
                Error("ledger.path", $"\"{ledger.Path}\" is not a file name");
            }
            else
            {
                // Relative to the config file, so `serve` finds the same ledger from any working directory.
                var baseDirectory = System.IO.Path.IsPathRooted(source) ? System.IO.Path.GetDirectoryName(source) : null;
                path = System.IO.Path.GetFullPath(path, baseDirectory ?? Directory.GetCurrentDirectory());
            }
        }

        return new LedgerModel(path, interval, ledger.BatchSize, ledger.QueueCapacity);
    }

    private double AdaptiveMin(double min)
    {
        if (min is > 0 and <= 1)
        {
            return min;
        }

        Error("scheduler.adaptive_min", $"must be greater than 0 and at most 1, a share of max_concurrency (got {Number(min)})");
        return 0.5;
    }

    // 10: past ten times its configured concurrency a worker's max_concurrency is simply wrong,
    // and fixing the number beats letting the gateway find it one slot per scrape.
    private double AdaptiveMax(double max)
    {
        if (max is >= 1 and <= 10)
        {
            return max;
        }

        Error("scheduler.adaptive_max", $"must be 1 to 10, a multiple of max_concurrency (got {Number(max)})");
        return 1.5;
    }

    private ImmutableArray<double> BucketShares(SchedulerConfig scheduler)
    {
        var count = scheduler.BucketCount;
        if (count is < 2 or > 100)
        {
            Error("scheduler.bucket_count", $"must be 2 to 100 (got {count})");
            count = 10;
        }

        var shares = scheduler.BucketShares;
        if (shares.Count == 0)
        {
            return SchedulerModel.GeometricShares(count);
        }

        if (shares.Count != count)
        {
            Error("scheduler.bucket_shares", $"lists {shares.Count} shares for {count} buckets (scheduler.bucket_count); list one per bucket, or none");
            return SchedulerModel.GeometricShares(count);
        }

        var sum = 0.0;
        for (var i = 0; i < shares.Count; i++)
        {
            sum += NonNegative($"scheduler.bucket_shares[{i}]", shares[i]);
        }

        if (!(sum > 0))
        {
            Error("scheduler.bucket_shares", "must not all be 0; they are relative shares of the slots");
            return SchedulerModel.GeometricShares(count);
        }

        return [.. shares.Select(share => Math.Max(0, share) / sum)];
    }

    private ImmutableArray<WorkerModel> Workers(IReadOnlyList<WorkerConfig> workers, PacingConfig pacing)
    {
        Unknown("pacing", pacing.Unknown);
        var margin = pacing.SafetyMargin;
        if (margin is < 0 or > 50)
        {
            // 50: read as a percentage of tpm, more would keep most of the paid limit unused.
            Error("pacing.safety_margin", $"must be 0 to 50 (got {margin})");
            margin = 2;
        }

        var maxWait = Positive("pacing.max_wait", pacing.MaxWait);
        var result = ImmutableArray.CreateBuilder<WorkerModel>(workers.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < workers.Count; i++)
        {
            var worker = workers[i];
            var at = $"workers[{i}]";
            Unknown(at, worker.Unknown);
            Name($"{at}.name", worker.Name, "worker", names, i, "workers");
            var url = WorkerUrl($"{at}.url", worker.Url);
            var models = ImmutableArray.CreateBuilder<string>();
            if (worker.Models is { } listed)
            {
                for (var m = 0; m < listed.Count; m++)
                {
                    if (string.IsNullOrWhiteSpace(listed[m]))
                    {
                        Error($"{at}.models[{m}]", "a model name must not be empty");
                    }
                    else
                    {
                        models.Add(listed[m]);
                    }
                }
            }

            AtLeast($"{at}.max_concurrency", worker.MaxConcurrency, 1);
            AtLeast($"{at}.weight", worker.Weight, 1);
            result.Add(new WorkerModel(worker.Name, url, models.ToImmutable(), worker.MaxConcurrency, worker.Weight, worker.ApiKey, Pacing(at, worker, margin, maxWait)));
        }

        return result.MoveToImmutable();
    }

    // A worker's rpm/tpm with [pacing] applied; null when it has neither (vLLM: nothing to pace).
    private PacingModel? Pacing(string at, WorkerConfig worker, int margin, TimeSpan maxWait)
    {
        PerMinute($"{at}.rpm", worker.Rpm);
        PerMinute($"{at}.tpm", worker.Tpm);
        if (worker.Rpm > 0 && worker.Rpm <= margin)
        {
            Error($"{at}.rpm", $"must be greater than pacing.safety_margin ({margin}), or no request could ever go (got {worker.Rpm})");
        }

        if (worker.PacingMaxWait.Length > 0)
        {
            maxWait = Positive($"{at}.pacing_max_wait", worker.PacingMaxWait);
        }

        return worker.Rpm > 0 || worker.Tpm > 0 ? new PacingModel(worker.Rpm, worker.Tpm, margin, maxWait) : null;
    }

    private ImmutableArray<ClassModel> Classes(IReadOnlyList<ClassConfig> classes, int bucketCount)
    {
        if (classes.Count == 0)
        {
            return [Implicit(bucketCount)];
        }

        var result = ImmutableArray.CreateBuilder<ClassModel>(classes.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < classes.Count; i++)
        {
            var cls = classes[i];
            var at = $"classes[{i}]";
            Unknown(at, cls.Unknown);
            var unique = Name($"{at}.name", cls.Name, "class", names, i, "classes");
            if (cls.Priority is < 0 or > MaxPriority)
            {
                Error($"{at}.priority", $"must be 0 (most important) to {MaxPriority} (got {cls.Priority})");
            }

            AtLeast($"{at}.weight", cls.Weight, 1);
            var wait = Positive($"{at}.max_queue_wait", cls.MaxQueueWait);
            if (!(cls.MaxUtilization > 0 && cls.MaxUtilization <= 1))
            {
                Error($"{at}.max_utilization", $"must be above 0 and at most 1.0 (got {Number(cls.MaxUtilization)})");
            }

            var (first, last) = ClassBuckets(at, cls, bucketCount);
            if (cls.Mode is not (ClassModes.Strict or ClassModes.AtLeast))
            {
                Error($"{at}.mode", $"unknown mode \"{cls.Mode}\"; use \"{ClassModes.AtLeast}\" or \"{ClassModes.Strict}\"");
            }

            // A duplicate is reported above and left out here, so the snapshot stays buildable
            // (ClassesByName would throw) while the remaining rules are still checked.
            if (unique)
            {
                result.Add(new ClassModel(cls.Name, cls.Priority, cls.Weight, wait, cls.MaxUtilization, first, last, cls.Mode == ClassModes.Strict));
            }
        }

        return result.ToImmutable();
    }

    private (int First, int Last) ClassBuckets(string at, ClassConfig cls, int bucketCount)
    {
        if (cls.Buckets.Count == 0)
        {
            return ClassModel.BucketsOf(Math.Clamp(cls.Priority, 0, MaxPriority), bucketCount);
        }

        if (cls.Buckets.Count != 2 || cls.Buckets[0] < 0 || cls.Buckets[0] > cls.Buckets[1] || cls.Buckets[1] >= bucketCount)
        {
            Error($"{at}.buckets", $"must be [first, last] with 0 <= first <= last < {bucketCount} (scheduler.bucket_count), got [{string.Join(", ", cls.Buckets)}]");
            return ClassModel.BucketsOf(Math.Clamp(cls.Priority, 0, MaxPriority), bucketCount);
        }

        return (cls.Buckets[0], cls.Buckets[1]);
    }

    private ImmutableArray<TenantModel> Tenants(IReadOnlyList<TenantConfig> tenants, ImmutableArray<ClassModel> classes, bool implicitClasses)
    {
        var result = ImmutableArray.CreateBuilder<TenantModel>(tenants.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var classNames = classes.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var keyOwners = new Dictionary<(ulong, ulong, ulong, ulong), (int Tenant, int Key)>(); // digest -> where it is listed
        for (var i = 0; i < tenants.Count; i++)
        {
            var tenant = tenants[i];
            var at = $"tenants[{i}]";
            Unknown(at, tenant.Unknown);
            Name(new(at, "name"), tenant.Name, "tenant", names, i, "tenants");
            if (!classNames.Contains(tenant.Class))
            {
                var known = implicitClasses
                    ? $"without [[classes]] the only class is \"{DefaultClassName}\""
                    : $"[[classes]] defines {string.Join(", ", classes.Select(c => $"\"{c.Name}\""))}";
                Error(new(at, "class"), $"class \"{tenant.Class}\" is not defined; {known}");
            }

            AtLeast(new(at, "weight"), tenant.Weight, 1);
            var hashes = ImmutableArray.CreateBuilder<ImmutableArray<byte>>(tenant.ApiKeySha256.Count);
            for (var k = 0; k < tenant.ApiKeySha256.Count; k++)
            {
                var path = new KeyPath(at, "api_key_sha256", k);
                var hash = Sha256(path, tenant.ApiKeySha256[k], allowEmpty: false);
                if (hash.IsEmpty)
                {
                    continue;
                }

                var digest = hash.AsSpan();
                var key = (BinaryPrimitives.ReadUInt64LittleEndian(digest), BinaryPrimitives.ReadUInt64LittleEndian(digest[8..]), BinaryPrimitives.ReadUInt64LittleEndian(digest[16..]), BinaryPrimitives.ReadUInt64LittleEndian(digest[24..]));
                if (!keyOwners.TryAdd(key, (i, k)))
                {
                    var owner = keyOwners[key];
                    Error(path, $"the same key hash is already listed at tenants[{owner.Tenant}].api_key_sha256[{owner.Key}]; a key must identify one tenant");
                    continue;
                }

                hashes.Add(hash);
            }

            if (tenant.Models.Count == 0)
            {
                Error(new(at, "models"), "must list at least one model; \"*\" allows all");
            }

            for (var m = 0; m < tenant.Models.Count; m++)
            {
                if (string.IsNullOrWhiteSpace(tenant.Models[m]))
                {
                    Error(new(at, "models", m), "a model name must not be empty");
                }
            }

            PerMinute(new(at, "rpm"), tenant.Rpm);
            PerMinute(new(at, "tpm"), tenant.Tpm);
            AtLeast(new(at, "max_in_flight"), tenant.MaxInFlight, 0);
            var budget = Budget(at, tenant);
            result.Add(new TenantModel(
                tenant.Name,
                tenant.Class,
                tenant.Weight,
                hashes.DrainToImmutable(),
                [.. tenant.Models],
                tenant.Rpm,
                tenant.Tpm,
                tenant.MaxInFlight,
                tenant.Environment,
                budget));
        }

        return result.MoveToImmutable();
    }

    // null when the tenant sets no budget: it then costs the limit stage nothing.
    private TenantBudgetModel? Budget(string at, TenantConfig tenant)
    {
        if (tenant is { BudgetTokens: 0, MonthlyBudgetTokens: 0, BudgetUsd: 0, MonthlyBudgetUsd: 0 })
        {
            return null;
        }

        var budget = new TenantBudgetModel(
            BudgetTokens(new(at, "budget_tokens"), tenant.BudgetTokens),
            BudgetTokens(new(at, "monthly_budget_tokens"), tenant.MonthlyBudgetTokens),
            BudgetNanos(new(at, "budget_usd"), tenant.BudgetUsd),
            BudgetNanos(new(at, "monthly_budget_usd"), tenant.MonthlyBudgetUsd));
        return budget is { Tokens: 0, MonthlyTokens: 0, Nanos: 0, MonthlyNanos: 0 } ? null : budget;
    }

    private long BudgetTokens(KeyPath path, long value)
    {
        if (value is < 0 or > TenantBudgetModel.MaxTokens)
        {
            Error(path, $"must be 0 (no budget) to {TenantBudgetModel.MaxTokens} tokens (got {value})");
            return 0;
        }

        return value;
    }

    // USD to whole nano-USD, rounded to the nearest: a budget finer than 1e-9 USD means nothing.
    private long BudgetNanos(KeyPath path, double usd)
    {
        if (!(usd >= 0) || usd > TenantBudgetModel.MaxUsd)
        {
            Error(path, $"must be 0 (no budget) to {Number(TenantBudgetModel.MaxUsd)} USD (got {Number(usd)})");
            return 0;
        }

        return (long)Math.Round(usd * 1e9, MidpointRounding.AwayFromZero);
    }

    private PricesModel Prices(IReadOnlyList<PriceConfig> prices)
    {
        if (prices.Count == 0)
        {
            return PricesModel.None;
        }

        var byModel = new Dictionary<string, ModelPrice>(StringComparer.Ordinal);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        ModelPrice fallback = default;
        for (var i = 0; i < prices.Count; i++)
        {
            var price = prices[i];
            var at = $"prices[{i}]";
            Unknown(at, price.Unknown);
            if (!Name($"{at}.model", price.Model, "price's model", names, i, "prices"))
            {
                continue;
            }

            var input = PriceNanos($"{at}.input_per_million", price.InputPerMillion);
            var model = new ModelPrice(
                input,
                price.CachedInputPerMillion is { } cached ? PriceNanos($"{at}.cached_input_per_million", cached) : input,
                PriceNanos($"{at}.output_per_million", price.OutputPerMillion));
            if (price.Model == PricesModel.AnyModel)
            {
                fallback = model;
            }
            else
            {
                byModel[price.Model] = model;
            }
        }

        return new PricesModel(byModel.ToFrozenDictionary(StringComparer.Ordinal), fallback);
    }

    // USD per million tokens to whole nano-USD per token (x 1,000). A price with more than three
    // decimals has no whole nano-USD per token and is refused rather than rounded: a rounded
    // price would bill every token slightly wrong, and the sums would drift from the provider's.
    private long PriceNanos(string path, double perMillion)
    {
        if (!(perMillion >= 0) || perMillion > ModelPrice.MaxPerMillion)
        {
            Error(path, $"must be 0 to {Number(ModelPrice.MaxPerMillion)} USD per million tokens (got {Number(perMillion)})");
            return 0;
        }

        var nanos = Math.Round(perMillion * 1000);
        if (Math.Abs((perMillion * 1000) - nanos) > 1e-6)
        {
            Error(path, $"has more than 3 decimals (got {Number(perMillion)}); the gateway counts whole nano-USD per token, 0.001 USD per million tokens");
            return 0;
        }

        return (long)nanos;
    }

    private ImmutableArray<TimeWindowModel> TimeWindows(IReadOnlyList<TimeWindowConfig> windows, ImmutableArray<ClassModel> classes, int bucketCount)
    {
        var result = ImmutableArray.CreateBuilder<TimeWindowModel>(windows.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < windows.Count; i++)
        {
            var window = windows[i];
            var at = $"time_windows[{i}]";
            Unknown(at, window.Unknown);
            var valid = Name($"{at}.name", window.Name, "time window", names, i, "time_windows");
            var zone = TimeZone($"{at}.timezone", window.Timezone);
            CronSchedule? schedule = null;
            if (zone is not null && !CronSchedule.TryParse(window.Schedule, zone, out schedule, out var cronError))
            {
                Error($"{at}.schedule", cronError);
            }

            var duration = Positive($"{at}.duration", window.Duration);
            if (duration > MaxWindowDuration)
            {
                Error($"{at}.duration", $"must be at most 168h (7 days, a weekly schedule's whole week), got \"{window.Duration}\"");
            }

            if (!classes.Any(c => string.Equals(c.Name, window.Class, StringComparison.Ordinal)))
            {
                Error($"{at}.class", $"class \"{window.Class}\" is not defined; the classes are {string.Join(", ", classes.Select(c => $"\"{c.Name}\""))}");
                valid = false;
            }

            if (window.Priority is < -1 or > MaxPriority)
            {
                Error($"{at}.priority", $"must be -1 (unchanged) or 0 (most important) to {MaxPriority} (got {window.Priority})");
            }

            AtLeast($"{at}.weight", window.Weight, 0);
            if (Math.Abs(window.BucketShift) >= bucketCount)
            {
                Error($"{at}.bucket_shift", $"must be between -{bucketCount - 1} and {bucketCount - 1} (scheduler.bucket_count is {bucketCount}), got {window.BucketShift}");
            }

            if (window.Priority == -1 && window.Weight == 0 && window.BucketShift == 0)
            {
                Error(at, "changes nothing; set priority (0..9), weight (>= 1) or bucket_shift (not 0)");
            }

            if (valid && schedule is not null)
            {
                result.Add(new TimeWindowModel(
                    window.Name,
                    schedule,
                    duration,
                    window.Class,
                    window.Priority >= 0 ? window.Priority : null,
                    window.Weight > 0 ? window.Weight : null,
                    window.BucketShift));
            }
        }

        return result.ToImmutable();
    }

    // "UTC" (or ""), a fixed offset "+02:00" / "-05:30", or an IANA id from the host's tz database
    // (/usr/share/zoneinfo on Linux: InvariantGlobalization does not affect it, but a minimal
    // container image may not ship it, hence the hint in the error).
    private TimeZoneInfo? TimeZone(string path, string text)
    {
        if (text.Length == 0 || string.Equals(text, "UTC", StringComparison.OrdinalIgnoreCase))
        {
            return TimeZoneInfo.Utc;
        }

        if (text[0] is '+' or '-')
        {
            if (text.Length == 6 && text[3] == ':'
                && int.TryParse(text.AsSpan(1, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var hours)
                && int.TryParse(text.AsSpan(4, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var minutes)
                && hours <= 14 && minutes < 60)
            {
                var offset = new TimeSpan(hours, minutes, 0) * (text[0] == '-' ? -1 : 1);
                return TimeZoneInfo.CreateCustomTimeZone(text, offset, text, text);
            }

            Error(path, $"\"{text}\" is not an offset; write \"+HH:MM\" or \"-HH:MM\" (at most 14:00)");
            return null;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(text);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            Error(path, $"time zone \"{text}\" is not in this host's tz database; use an IANA id (\"Europe/Berlin\") with tzdata installed, \"UTC\" or a fixed offset (\"+02:00\")");
            return null;
        }
    }

    private AuthModel Auth(AuthConfig auth, ImmutableArray<ClassModel> classes)
    {
        Unknown("auth", auth.Unknown);
        if (auth.DefaultClass.Length > 0 && !classes.Any(c => string.Equals(c.Name, auth.DefaultClass, StringComparison.Ordinal)))
        {
            Error("auth.default_class", $"class \"{auth.DefaultClass}\" is not defined; the classes are {string.Join(", ", classes.Select(c => $"\"{c.Name}\""))} (\"\" turns anonymous access off)");
        }

        var sources = ImmutableArray.CreateBuilder<IPNetwork>(auth.TrustedSources.Count);
        for (var i = 0; i < auth.TrustedSources.Count; i++)
        {
            var text = auth.TrustedSources[i];
            if (TrustedNetwork.TryParse(text, out var network))
            {
                sources.Add(network);
            }
            else
            {
                Error($"auth.trusted_sources[{i}]", $"\"{text}\" is not a network: write a CIDR with its host bits zero (\"10.0.0.0/8\", \"fd00::/8\") or one address (\"10.0.0.7\")");
            }
        }

        if (auth.TrustedHeaders && auth.TrustedSources.Count == 0)
        {
            Error("auth.trusted_headers", "needs auth.trusted_sources, the networks of the proxy that sets x-tenant, x-customer-tier and x-priority; honoured from anywhere, they would let any client choose its tenant");
        }

        return new AuthModel(auth.DefaultClass, auth.TrustedHeaders, sources.ToImmutable());
    }

    private JwtModel Jwt(JwtConfig jwt, string source)
    {
        Unknown("jwt", jwt.Unknown);
        ImmutableArray<byte> secret = [];
        if (jwt.Hs256SecretEnv.Length > 0)
        {
            var value = System.Environment.GetEnvironmentVariable(jwt.Hs256SecretEnv);
            if (string.IsNullOrEmpty(value))
            {
                Error("jwt.hs256_secret_env", $"the environment variable {jwt.Hs256SecretEnv} is not set or empty; it must hold the HS256 secret");
            }
            else if (System.Text.Encoding.UTF8.GetByteCount(value) < 32)
            {
                Error("jwt.hs256_secret_env", $"the secret in {jwt.Hs256SecretEnv} has {System.Text.Encoding.UTF8.GetByteCount(value)} bytes; HS256 needs at least 32 (256 bits, RFC 7518 3.2)");
            }
            else
            {
                secret = [.. System.Text.Encoding.UTF8.GetBytes(value)];
            }
        }

        ImmutableArray<JwtKey> keys = [];
        if (jwt.JwksFile.Length > 0)
        {
            // Relative to the config file, so that a config and its key set can move together.
            var directory = Path.IsPathRooted(source) ? Path.GetDirectoryName(source) : null;
            var path = Path.GetFullPath(jwt.JwksFile, directory ?? System.Environment.CurrentDirectory);
            if (!JwksReader.TryRead(path, out keys, out var error))
            {
                Error("jwt.jwks_file", error);
            }
        }

        if (jwt.Hs256SecretEnv.Length == 0 && jwt.JwksFile.Length == 0)
        {
            if (jwt.Issuer.Length > 0)
            {
                Error("jwt.issuer", "is set, but JWT is off; set jwt.hs256_secret_env or jwt.jwks_file to turn it on");
            }

            if (jwt.Audience.Length > 0)
            {
                Error("jwt.audience", "is set, but JWT is off; set jwt.hs256_secret_env or jwt.jwks_file to turn it on");
            }
        }

        if (string.IsNullOrWhiteSpace(jwt.TenantClaim))
        {
            Error("jwt.tenant_claim", "must name the claim that holds the tenant (\"tenant\" by default)");
        }
        else if (RegisteredClaims.Contains(jwt.TenantClaim))
        {
            Error("jwt.tenant_claim", $"\"{jwt.TenantClaim}\" is a registered claim the gateway checks itself; name the claim that holds the tenant");
        }

        if (RegisteredClaims.Contains(jwt.ClassClaim))
        {
            Error("jwt.class_claim", $"\"{jwt.ClassClaim}\" is a registered claim the gateway checks itself; name the claim that holds the class (\"\" ignores classes in tokens)");
        }
        else if (jwt.ClassClaim.Length > 0 && string.Equals(jwt.ClassClaim, jwt.TenantClaim, StringComparison.Ordinal))
        {
            Error("jwt.class_claim", $"is the same claim as jwt.tenant_claim (\"{jwt.TenantClaim}\"); one claim cannot name both");
        }

        var skew = TimeSpan.Zero;
        if (!Duration.TryParse(jwt.ClockSkew, out skew))
        {
            Error("jwt.clock_skew", $"\"{jwt.ClockSkew}\" is not a duration; write a number and a unit: \"0s\", \"30s\", \"1m\"");
        }
        else if (skew > MaxClockSkew)
        {
            Error("jwt.clock_skew", $"must be at most 10m (got \"{jwt.ClockSkew}\"); a larger skew keeps expired tokens alive");
        }

        return new JwtModel(secret, keys, jwt.Issuer, jwt.Audience, jwt.TenantClaim, jwt.ClassClaim, skew);
    }

    // Unknown keys are errors: a typo ("max_concurency") must not silently keep the default.
    private void Unknown(string table, Dictionary<string, object?>? unknown)
    {
        if (unknown is null)
        {
            return;
        }

        foreach (var key in unknown.Keys)
        {
            var path = table.Length == 0 ? key : $"{table}.{key}";
            var where = table.Length == 0 ? "at the top level" : $"in {TableLabel(table)}";
            Error(path, $"unknown key {where}");
        }
    }

    private bool Name(KeyPath path, string name, string what, Dictionary<string, int> seen, int index, string table)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            Error(path, $"every {what} needs a non-empty name");
            return false;
        }

        if (seen.TryGetValue(name, out var first))
        {
            Error(path, $"{what} name \"{name}\" is already used by {table}[{first}]");
            return false;
        }

        seen[name] = index;
        return true;
    }

    private Uri WorkerUrl(string path, string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url)
            || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            Error(path, $"\"{text}\" is not an absolute http:// or https:// URL");
            return new Uri("http://invalid/");
        }

        if (url.Query.Length > 0 || url.Fragment.Length > 0)
        {
            Error(path, $"\"{text}\": a base URL has no query or fragment");
        }

        // Always end in "/", so that "v1/chat/completions" resolves under the base path.
        return url.AbsolutePath.EndsWith('/') ? url : new Uri(url.GetLeftPart(UriPartial.Path) + "/");
    }

    private IPEndPoint? EndPoint(string path, string text)
    {
        if (ListenAddress.TryParse(text, out var endPoint, out var error))
        {
            return endPoint;
        }

        Error(path, error);
        return null;
    }

    private ImmutableArray<byte> Sha256(KeyPath path, string hex, bool allowEmpty)
    {
        if (hex.Length == 0 && allowEmpty)
        {
            return [];
        }

        var digest = new byte[32];
        if (hex.Length != 64 || Convert.FromHexString(hex, digest, out _, out _) != OperationStatus.Done)
        {
            Error(path, $"must be a SHA-256 as 64 hex characters (got {hex.Length} characters); `aotproxy hash-key KEY` prints it");
            return [];
        }

        return ImmutableCollectionsMarshal.AsImmutableArray(digest);
    }

    private TimeSpan Positive(string path, string text)
    {
        if (!Duration.TryParse(text, out var value))
        {
            Error(path, $"\"{text}\" is not a duration; write a number and a unit: \"250ms\", \"30s\", \"5m\", \"1h\"");
            return TimeSpan.FromSeconds(1);
        }

        if (value <= TimeSpan.Zero)
        {
            Error(path, $"must be greater than zero (got \"{text}\")");
            return TimeSpan.FromSeconds(1);
        }

        return value;
    }

    private double NonNegative(string path, double value)
    {
        if (!(value >= 0) || double.IsInfinity(value))
        {
            Error(path, $"must be a finite number >= 0 (got {Number(value)})");
            return 0;
        }

        return value;
    }

    private static string Number(double value) => value.ToString(CultureInfo.InvariantCulture);

    // rpm and tpm: 0 (unlimited) up to the token bucket's ceiling.
    private void PerMinute(KeyPath path, long value)
    {
        if (value is < 0 or > LimitsModel.MaxPerMinute)
        {
            Error(path, $"must be 0 (unlimited) to {LimitsModel.MaxPerMinute} per minute (got {value})");
        }
    }

    private void AtLeast(KeyPath path, long value, long minimum)
    {
        if (value < minimum)
        {
            Error(path, $"must be at least {minimum} (got {value})");
        }
    }

    private void Error(KeyPath path, string message) => _errors.Add((path.ToString(), message));

    private static string TableLabel(string table)
    {
        var bracket = table.IndexOf('[', StringComparison.Ordinal);
        return bracket < 0 ? $"[{table}]" : $"[[{table[..bracket]}]]";
    }
}
