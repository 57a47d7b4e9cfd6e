namespace AotProxy.Tests.Configuration;

// One rule per row: the file breaks exactly that rule, and the single error names its key and line.
public sealed class ConfigValidationTests
{
    private const string Hash = "82dae6d443609cfcb4e698af21391e5132c679ce83b37086ada791a0fb2a43ee";

    [Theory]
    [InlineData("[server]\nlisten = \"nope\"", 2, "server.listen")]
    [InlineData("[server]\nlisten = \"example.com:80\"", 2, "server.listen")]
    [InlineData("[server]\nlisten = \"::1:80\"", 2, "server.listen")]
    [InlineData("[server]\nlisten = \"127.0.0.1:70000\"", 2, "server.listen")]
    [InlineData("[server]\nlisten = \"127.0.0.1:\"", 2, "server.listen")]
    [InlineData("[server]\nadmin_listen = \"[::1\"", 2, "server.admin_listen")]
    [InlineData("[server]\nadmin_listen = \"127.0.0.1:8080\"", 2, "server.admin_listen")]
    [InlineData("[server]\nh2c_listen = \"127.0.0.1:8080\"", 2, "server.h2c_listen")]
    [InlineData("[server]\nh2c_listen = \"127.0.0.1:9090\"", 2, "server.h2c_listen")]
    [InlineData("[server]\nh2c_listen = \"h2c\"", 2, "server.h2c_listen")]
    [InlineData("[server]\nadmin_token_sha256 = \"abc\"", 2, "server.admin_token_sha256")]
    [InlineData("[server]\nadmin_token_sha256 = \"zz5de8ecb6356ac645cac5a27099d33ce85cca81d9ea1ec34d03a1615efa5d73\"", 2, "server.admin_token_sha256")]
    [InlineData("[server]\nmax_request_bytes = 0", 2, "server.max_request_bytes")]
    [InlineData("[server]\nmax_request_bytes = -1", 2, "server.max_request_bytes")]
    [InlineData("[server]\nshutdown_grace = \"30\"", 2, "server.shutdown_grace")]
    [InlineData("[server]\nshutdown_grace = \"0s\"", 2, "server.shutdown_grace")]
    [InlineData("[server]\nmax_connections = -1", 2, "server.max_connections")]
    [InlineData("[server]\nmax_header_bytes = 1023", 2, "server.max_header_bytes")]
    [InlineData("[server]\nmax_header_bytes = 1048577", 2, "server.max_header_bytes")]
    [InlineData("[server]\ntransport = \"io_uring\"", 2, "server.transport")]
    [InlineData("[server]\ntransport = \"EPOLL\"", 2, "server.transport")]
    [InlineData("[server]\npark_idle_after = \"1\"", 2, "server.park_idle_after")]
    [InlineData("[server]\npark_idle_after = \"-1s\"", 2, "server.park_idle_after")]
    [InlineData("[routing]\nstrategy = \"random\"", 2, "routing.strategy")]
    [InlineData("[routing]\nstrategy = \"P2C_KV\"", 2, "routing.strategy")]
    [InlineData("[routing]\nmetrics_interval = \"-1s\"", 2, "routing.metrics_interval")]
    [InlineData("[routing]\nmetrics_interval = \"1s\"\nmetrics_timeout = \"1s\"", 3, "routing.metrics_timeout")]
    [InlineData("[routing]\nweight_kv = -1.0", 2, "routing.weight_kv")]
    [InlineData("[routing]\nweight_error = nan", 2, "routing.weight_error")]
    [InlineData("[routing]\nprefix_ttl = \"0s\"", 2, "routing.prefix_ttl")]
    [InlineData("[routing]\naffinity_max_ratio = 0.5", 2, "routing.affinity_max_ratio")]
    [InlineData("[routing]\nvirtual_nodes = 0", 2, "routing.virtual_nodes")]
    [InlineData("[routing]\nvirtual_nodes = 100000", 2, "routing.virtual_nodes")]
    [InlineData("[routing]\nepsilon = 1.5", 2, "routing.epsilon")]
    [InlineData("[routing]\nlearning_rate = 0.0", 2, "routing.learning_rate")]
    [InlineData("[routing]\nweight_runing = 1.0", 2, "routing.weight_runing")]
    [InlineData("[health]\ninterval = \"1s\"\ntimeout = \"2s\"", 3, "health.timeout")]
    [InlineData("[health]\npath = \"health\"", 2, "health.path")]
    [InlineData("[health]\nunhealthy_threshold = 0", 2, "health.unhealthy_threshold")]
    [InlineData("[health]\nhealthy_treshold = 2", 2, "health.healthy_treshold")]
    [InlineData("[circuit_breaker]\nfailure_threshold = 0", 2, "circuit_breaker.failure_threshold")]
    [InlineData("[circuit_breaker]\nhalf_open_max_requests = 0", 2, "circuit_breaker.half_open_max_requests")]
    [InlineData("[circuit_breaker]\nopen_timeout = \"soon\"", 2, "circuit_breaker.open_timeout")]
    [InlineData("[retries]\nmax_attempts = 0", 2, "retries.max_attempts")]
    [InlineData("[retries]\nmax_attempts = 11", 2, "retries.max_attempts")]
    [InlineData("[retries]\nbackoff_base = \"2s\"\nbackoff_max = \"1s\"", 3, "retries.backoff_max")]
    [InlineData("[retries]\nbudget_ratio = 2.0", 2, "retries.budget_ratio")]
    [InlineData("[forwarding]\nconnect_timeout = \"5 s\"", 2, "forwarding.connect_timeout")]
    [InlineData("[forwarding]\nactivity_timeout = \"0ms\"", 2, "forwarding.activity_timeout")]
    [InlineData("[scheduler]\npolicy = \"lottery\"", 2, "scheduler.policy")]
    [InlineData("[scheduler]\nqueue_capacity = 0", 2, "scheduler.queue_capacity")]
    [InlineData("[scheduler]\nqueue_capacity = 2000000", 2, "scheduler.queue_capacity")]
    [InlineData("[scheduler]\ninput_weight = -1.0", 2, "scheduler.input_weight")]
    [InlineData("[scheduler]\noutput_weight = inf", 2, "scheduler.output_weight")]
    [InlineData("[scheduler]\naging_factor = 0.0", 2, "scheduler.aging_factor")]
    [InlineData("[scheduler]\nbucket_count = 1", 2, "scheduler.bucket_count")]
    [InlineData("[scheduler]\nbucket_count = 101", 2, "scheduler.bucket_count")]
    [InlineData("[scheduler]\nbucket_count = 3\nbucket_shares = [1.0, 1.0]", 3, "scheduler.bucket_shares")]
    [InlineData("[scheduler]\nbucket_count = 2\nbucket_shares = [0.0, 0.0]", 3, "scheduler.bucket_shares")]
    [InlineData("[scheduler]\nbucket_count = 2\nbucket_shares = [1.0, -0.5]", 3, "scheduler.bucket_shares[1]")]
    [InlineData("[scheduler]\nbucket_cuont = 2", 2, "scheduler.bucket_cuont")]
    [InlineData("[scheduler]\nadaptive_min = 0.0", 2, "scheduler.adaptive_min")]
    [InlineData("[scheduler]\nadaptive_min = 1.5", 2, "scheduler.adaptive_min")]
    [InlineData("[scheduler]\nadaptive_min = nan", 2, "scheduler.adaptive_min")]
    [InlineData("[scheduler]\nadaptive_max = 0.9", 2, "scheduler.adaptive_max")]
    [InlineData("[scheduler]\nadaptive_max = 10.5", 2, "scheduler.adaptive_max")]
    [InlineData("[scheduler]\nadaptive_slots = true\n\nadaptive_max = inf", 4, "scheduler.adaptive_max")]
    [InlineData("[scheduler]\nadaptive_slots = \"yes\"", 2, "scheduler.adaptive_slots")]
    [InlineData("[scheduler]\npolicy = \"priority\"\nengine_priority = \"yes\"", 3, "scheduler.engine_priority")]
    [InlineData("[scheduler]\nengine_priority = 1", 2, "scheduler.engine_priority")]
    [InlineData("[scheduler]\nengine_priorty = true", 2, "scheduler.engine_priorty")]
    [InlineData("[scheduler]\nlookahead = -0.1", 2, "scheduler.lookahead")]
    [InlineData("[scheduler]\nlookahead = 1.01", 2, "scheduler.lookahead")]
    [InlineData("[scheduler]\nlookahead = nan", 2, "scheduler.lookahead")]
    [InlineData("[scheduler]\nlookahead = \"half\"", 2, "scheduler.lookahead")]
    [InlineData("[scheduler]\nholdback = -0.1", 2, "scheduler.holdback")]
    [InlineData("[scheduler]\nholdback = 0.6", 2, "scheduler.holdback")]
    [InlineData("[scheduler]\nholdback = nan", 2, "scheduler.holdback")]
    [InlineData("[scheduler]\nprotection_window = \"500ms\"", 2, "scheduler.protection_window")]
    [InlineData("[scheduler]\nprotection_window = \"2h\"", 2, "scheduler.protection_window")]
    [InlineData("[scheduler]\nprotection_window = \"30\"", 2, "scheduler.protection_window")]
    [InlineData("[scheduler]\nprotection_min_samples = 0", 2, "scheduler.protection_min_samples")]
    [InlineData("[scheduler]\nprotection_windw = \"30s\"", 2, "scheduler.protection_windw")]
    [InlineData("[limits]\ndefault_max_tokens = 0", 2, "limits.default_max_tokens")]
    [InlineData("[limits]\n\ndefault_max_tokens = -5", 3, "limits.default_max_tokens")]
    [InlineData("[limits]\ndefault_max_tokens = 1000000001", 2, "limits.default_max_tokens")]
    [InlineData("[limits]\ndefault_max_token = 512", 2, "limits.default_max_token")]
    public void Parse_InvalidTableValue_ReportsKeyAndLine(string toml, int line, string key) =>
        AssertSingle(toml, line, key);

    [Theory]
    [InlineData("[[workers]]\nurl = \"http://a\"", 1, "workers[0].name")]
    [InlineData("[[workers]]\nname = \"  \"\nurl = \"http://a\"", 2, "workers[0].name")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\n[[workers]]\nname = \"a\"\nurl = \"http://b\"", 5, "workers[1].name")]
    [InlineData("[[workers]]\nname = \"a\"", 1, "workers[0].url")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"ftp://a\"", 3, "workers[0].url")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"10.0.0.5:8000\"", 3, "workers[0].url")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"/relative\"", 3, "workers[0].url")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a/?x=1\"", 3, "workers[0].url")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nmax_concurrency = 0", 4, "workers[0].max_concurrency")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nweight = 0", 4, "workers[0].weight")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nkv_cache_tokens = -1", 4, "workers[0].kv_cache_tokens")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nmodels = [\"m\", \"\"]", 4, "workers[0].models[1]")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nrpm = -1", 4, "workers[0].rpm")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nrpm = 2", 4, "workers[0].rpm")]
    [InlineData("[pacing]\nsafety_margin = 10\n[[workers]]\nname = \"a\"\nurl = \"http://a\"\nrpm = 10", 6, "workers[0].rpm")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\ntpm = 1000000001", 4, "workers[0].tpm")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nrpm = 60\npacing_max_wait = \"0s\"", 5, "workers[0].pacing_max_wait")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nrmp = 60", 4, "workers[0].rmp")]
    [InlineData("[pacing]\nsafety_margin = -1", 2, "pacing.safety_margin")]
    [InlineData("[pacing]\nsafety_margin = 51", 2, "pacing.safety_margin")]
    [InlineData("[pacing]\nmax_wait = \"0s\"", 2, "pacing.max_wait")]
    [InlineData("[pacing]\nmax_wait = \"10\"", 2, "pacing.max_wait")]
    [InlineData("[pacing]\nmax_wiat = \"1s\"", 2, "pacing.max_wiat")]
    public void Parse_InvalidWorker_ReportsKeyAndLine(string toml, int line, string key) =>
        AssertSingle(toml, line, key);

    [Theory]
    [InlineData("[[classes]]\npriority = 1", 1, "classes[0].name")]
    [InlineData("[[classes]]\nname = \"a\"\n[[classes]]\nname = \"a\"", 4, "classes[1].name")]
    [InlineData("[[classes]]\nname = \"a\"\npriority = 10", 3, "classes[0].priority")]
    [InlineData("[[classes]]\nname = \"a\"\npriority = -1", 3, "classes[0].priority")]
    [InlineData("[[classes]]\nname = \"a\"\nweight = 0", 3, "classes[0].weight")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_error_rate = 1.0", 3, "classes[0].max_error_rate")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_error_rate = -0.01", 3, "classes[0].max_error_rate")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_error_rate = nan", 3, "classes[0].max_error_rate")]
    [InlineData("[[classes]]\nname = \"a\"\nttft_tolerance = 1.0", 3, "classes[0].ttft_tolerance")]
    [InlineData("[[classes]]\nname = \"a\"\nttft_tolerance = -2.0", 3, "classes[0].ttft_tolerance")]
    [InlineData("[[classes]]\nname = \"a\"\nttft_tolerance = inf", 3, "classes[0].ttft_tolerance")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_queue_wait = \"soon\"", 3, "classes[0].max_queue_wait")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_queue_wait = \"0s\"", 3, "classes[0].max_queue_wait")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_utilization = 0.0", 3, "classes[0].max_utilization")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_utilization = 1.01", 3, "classes[0].max_utilization")]
    [InlineData("[[classes]]\nname = \"a\"\nmax_utilization = nan", 3, "classes[0].max_utilization")]
    [InlineData("[[classes]]\nname = \"a\"\nbuckets = [3]", 3, "classes[0].buckets")]
    [InlineData("[[classes]]\nname = \"a\"\nbuckets = [4, 2]", 3, "classes[0].buckets")]
    [InlineData("[[classes]]\nname = \"a\"\nbuckets = [0, 10]", 3, "classes[0].buckets")]
    [InlineData("[[classes]]\nname = \"a\"\nmode = \"relaxed\"", 3, "classes[0].mode")]
    [InlineData("[[classes]]\nname = \"a\"\nttft_sla = \"fast\"", 3, "classes[0].ttft_sla")]
    [InlineData("[[classes]]\nname = \"a\"\nttft_sla = \"0ms\"", 3, "classes[0].ttft_sla")]
    public void Parse_InvalidClass_ReportsKeyAndLine(string toml, int line, string key) =>
        AssertSingle(toml, line, key);

    [Theory]
    [InlineData("[[tenants]]\nclass = \"default\"", 1, "tenants[0].name")]
    [InlineData("[[tenants]]\nname = \"t\"\n[[tenants]]\nname = \"t\"", 4, "tenants[1].name")]
    [InlineData("[[tenants]]\nname = \"t\"\nclass = \"gold\"", 3, "tenants[0].class")]
    [InlineData("[[classes]]\nname = \"gold\"\n[[tenants]]\nname = \"t\"", 3, "tenants[0].class")]
    [InlineData("[[tenants]]\nname = \"t\"\nweight = 0", 3, "tenants[0].weight")]
    [InlineData("[[tenants]]\nname = \"t\"\napi_key_sha256 = [\"xyz\"]", 3, "tenants[0].api_key_sha256[0]")]
    [InlineData("[[tenants]]\nname = \"t\"\napi_key_sha256 = [\n  \"" + Hash + "\",\n  \"" + Hash + "0\",\n]", 5, "tenants[0].api_key_sha256[1]")]
    [InlineData("[[tenants]]\nname = \"t\"\napi_key_sha256 = [\"" + Hash + "\", \"" + Hash + "\"]", 3, "tenants[0].api_key_sha256[1]")]
    [InlineData("[[tenants]]\nname = \"a\"\napi_key_sha256 = [\"" + Hash + "\"]\n[[tenants]]\nname = \"b\"\napi_key_sha256 = [\"82DAE6D443609CFCB4E698AF21391E5132C679CE83B37086ADA791A0FB2A43EE\"]", 6, "tenants[1].api_key_sha256[0]")]
    [InlineData("[[tenants]]\nname = \"t\"\nmodels = []", 3, "tenants[0].models")]
    [InlineData("[[tenants]]\nname = \"t\"\nmodels = [\"\"]", 3, "tenants[0].models[0]")]
    [InlineData("[[tenants]]\nname = \"t\"\nrpm = -1", 3, "tenants[0].rpm")]
    [InlineData("[[tenants]]\nname = \"t\"\ntpm = -1", 3, "tenants[0].tpm")]
    [InlineData("[[tenants]]\nname = \"t\"\nrpm = 1000000001", 3, "tenants[0].rpm")]
    [InlineData("[[tenants]]\nname = \"t\"\ntpm = 1000000001", 3, "tenants[0].tpm")]
    [InlineData("[[tenants]]\nname = \"t\"\nmax_in_flight = -1", 3, "tenants[0].max_in_flight")]
    [InlineData("[[tenants]]\nname = \"t\"\nbudget_tokens = -1", 3, "tenants[0].budget_tokens")]
    [InlineData("[[tenants]]\nname = \"t\"\nmonthly_budget_tokens = -5", 3, "tenants[0].monthly_budget_tokens")]
    [InlineData("[[tenants]]\nname = \"t\"\nmonthly_budget_tokens = 1000000000000000001", 3, "tenants[0].monthly_budget_tokens")]
    [InlineData("[[tenants]]\nname = \"t\"\nbudget_usd = -0.01", 3, "tenants[0].budget_usd")]
    [InlineData("[[tenants]]\nname = \"t\"\nmonthly_budget_usd = nan", 3, "tenants[0].monthly_budget_usd")]
    [InlineData("[[tenants]]\nname = \"t\"\nmonthly_budget_usd = 2e9", 3, "tenants[0].monthly_budget_usd")]
    [InlineData("[[tenants]]\nname = \"t\"\nbudget_dollars = 5.0", 3, "tenants[0].budget_dollars")]
    public void Parse_InvalidTenant_ReportsKeyAndLine(string toml, int line, string key) =>
        AssertSingle(toml, line, key);

    [Fact]
    public void Parse_NoWorkers_IsValid()
    {
        var snapshot = TestConfig.Valid("[routing]\nstrategy = \"least_queue\"");

        Assert.Empty(snapshot.Workers);
    }

    [Theory]
    [InlineData("round_robin")]
    [InlineData("weighted_round_robin")]
    [InlineData("least_queue")]
    [InlineData("least_connections")]
    [InlineData("p2c_kv")]
    [InlineData("consistent_hash")]
    [InlineData("adaptive")]
    public void Parse_EveryStrategyName_IsAccepted(string strategy) =>
        Assert.Equal(strategy, TestConfig.Valid($"[routing]\nstrategy = \"{strategy}\"").Routing.Strategy);

    [Theory]
    [InlineData("fairshare")]
    [InlineData("priority")]
    [InlineData("bucket")]
    public void Parse_EveryPolicyName_IsAccepted(string policy) =>
        Assert.Equal(policy, TestConfig.Valid($"[scheduler]\npolicy = \"{policy}\"").Scheduler.Policy);

    [Theory]
    [InlineData("http://a", "http://a/")]
    [InlineData("http://10.0.0.5:8000", "http://10.0.0.5:8000/")]
    [InlineData("https://h/base", "https://h/base/")]
    [InlineData("https://h/base/", "https://h/base/")]
    public void Parse_WorkerUrl_NormalisedToEndWithSlash(string url, string expected)
    {
        var snapshot = TestConfig.Valid($"[[workers]]\nname = \"a\"\nurl = \"{url}\"");

        Assert.Equal(expected, Assert.Single(snapshot.Workers).Url.ToString());
    }

    [Fact]
    public void Parse_EmptyWorkerModels_MeansDiscovery()
    {
        var snapshot = TestConfig.Valid("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nmodels = []");

        Assert.True(Assert.Single(snapshot.Workers).Models.IsEmpty);
    }

    [Fact]
    public void Parse_PriorityBounds_ZeroAndNineAccepted()
    {
        var snapshot = TestConfig.Valid("[[classes]]\nname = \"a\"\npriority = 0\n[[classes]]\nname = \"b\"\npriority = 9");

        Assert.Equal([0, 9], snapshot.Classes.Select(c => c.Priority));
    }

    [Theory]
    [InlineData(0, 10, 0, 1)]  // P0 -> buckets 0-1, as the source design maps them
    [InlineData(2, 10, 4, 5)]
    [InlineData(4, 10, 8, 9)]
    [InlineData(9, 10, 8, 9)]  // below P4: P4's buckets
    [InlineData(1, 20, 4, 7)]  // scaled to 20 buckets
    [InlineData(3, 2, 1, 1)]   // fewer buckets than levels: never an empty range
    public void Parse_ClassWithoutBuckets_TakesItsPrioritysRange(int priority, int buckets, int first, int last)
    {
        var snapshot = TestConfig.Valid($"[scheduler]\nbucket_count = {buckets}\n[[classes]]\nname = \"a\"\npriority = {priority}");

        var only = Assert.Single(snapshot.Classes);
        Assert.Equal((first, last), (only.FirstBucket, only.LastBucket));
        Assert.False(only.Strict);
    }

    [Fact]
    public void Parse_BucketShares_AreNormalized_AndDefaultToAGeometricDecay()
    {
        var listed = TestConfig.Valid("[scheduler]\nbucket_count = 3\nbucket_shares = [2.0, 1.0, 1.0]\n[[classes]]\nname = \"a\"\nbuckets = [1, 2]\nmode = \"strict\"");
        Assert.Equal([0.5, 0.25, 0.25], listed.Scheduler.BucketShares.ToArray());
        Assert.Equal((1, 2, true), (listed.Classes[0].FirstBucket, listed.Classes[0].LastBucket, listed.Classes[0].Strict));

        var shares = TestConfig.Valid("").Scheduler.BucketShares;
        Assert.Equal(10, shares.Length);
        Assert.Equal(1.0, shares.Sum(), 9);
        Assert.Equal(0.75, shares[1] / shares[0], 9);
    }

    [Fact]
    public void Parse_AdaptiveSlots_BoundsInclusiveAndCarriedToTheModel()
    {
        var scheduler = TestConfig.Valid("[scheduler]\nadaptive_slots = true\nadaptive_min = 1.0\nadaptive_max = 10.0").Scheduler;
        Assert.Equal((true, 1.0, 10.0), (scheduler.AdaptiveSlots, scheduler.AdaptiveMin, scheduler.AdaptiveMax));

        scheduler = TestConfig.Valid("[scheduler]\nadaptive_min = 0.01\nadaptive_max = 1.0").Scheduler;
        Assert.Equal((false, 0.01, 1.0), (scheduler.AdaptiveSlots, scheduler.AdaptiveMin, scheduler.AdaptiveMax));
    }

    [Fact]
    public void Parse_EnginePriority_OffByDefaultAndCarriedToTheModel()
    {
        Assert.False(TestConfig.Valid("").Scheduler.EnginePriority);
        Assert.False(TestConfig.Valid("[scheduler]\nengine_priority = false").Scheduler.EnginePriority);
        Assert.True(TestConfig.Valid("[scheduler]\nengine_priority = true").Scheduler.EnginePriority);
    }

    [Fact]
    public void Parse_Lookahead_OffByDefault_BoundsInclusiveAndCarriedToTheModel()
    {
        Assert.Equal(0, TestConfig.Valid("").Scheduler.Lookahead);
        Assert.Equal(0.25, TestConfig.Valid("[scheduler]\nlookahead = 0.25").Scheduler.Lookahead);
        Assert.Equal(1, TestConfig.Valid("[scheduler]\nlookahead = 1.0").Scheduler.Lookahead);
        Assert.Equal(0, TestConfig.Valid("[scheduler]\nlookahead = 0.0").Scheduler.Lookahead);
    }

    [Fact]
    public void Parse_Holdback_OffByDefault_BandsAreTheClassesDistinctPriorities()
    {
        Assert.Equal(0, TestConfig.Valid("").Scheduler.Holdback);
        var scheduler = TestConfig.Valid(
            "[scheduler]\nholdback = 0.2\n[[classes]]\nname = \"free\"\npriority = 5\n[[classes]]\nname = \"ent\"\npriority = 0\n[[classes]]\nname = \"batch\"\npriority = 5\n[[classes]]\nname = \"pro\"\npriority = 2").Scheduler;

        Assert.Equal(0.2, scheduler.Holdback);
        Assert.Equal([0, 2, 5], scheduler.Bands.ToArray());
    }

    [Fact]
    public void Parse_Protection_OffByDefault_OrderIsLoosestFirst()
    {
        var off = TestConfig.Valid("[[classes]]\nname = \"a\"\n[[classes]]\nname = \"b\"\npriority = 1").Scheduler.Protection;
        Assert.False(off.IsOn);
        Assert.Equal((TimeSpan.FromSeconds(30), 20), (off.Window, off.MinSamples));

        var on = TestConfig.Valid("""
            [scheduler]
            protection_window = "10s"
            protection_min_samples = 5
            [[classes]]
            name = "enterprise"
            max_error_rate = 0.01
            ttft_tolerance = 2.0
            [[classes]]
            name = "free"
            priority = 2
            max_error_rate = 0.2
            ttft_tolerance = 10.0
            [[classes]]
            name = "batch"
            priority = 3
            [[classes]]
            name = "premium"
            priority = 1
            max_error_rate = 0.05
            ttft_tolerance = 5.0
            [[classes]]
            name = "partner"
            priority = 1
            max_error_rate = 0.02
            ttft_tolerance = 5.0
            """).Scheduler.Protection;

        Assert.Equal((TimeSpan.FromSeconds(10), 5), (on.Window, on.MinSamples));
        // No tolerance is the loosest; equal TTFT tolerances: the looser error rate first.
        Assert.Equal(["batch", "free", "premium", "partner", "enterprise"], on.Order.Select(c => c.Name).ToArray());
        Assert.Equal((0.05, 5.0), (on.Order[2].MaxErrorRate, on.Order[2].TtftTolerance));
    }

    [Fact]
    public void Parse_LimitsDefaultMaxTokens_1024ByDefaultAndCarriedToTheModel()
    {
        Assert.Equal(1024, TestConfig.Valid("").Limits.DefaultMaxTokens);
        Assert.Equal(256, TestConfig.Valid("[limits]\ndefault_max_tokens = 256").Limits.DefaultMaxTokens);
        Assert.Equal(1_000_000_000, TestConfig.Valid("[limits]\ndefault_max_tokens = 1000000000").Limits.DefaultMaxTokens);
    }

    [Fact]
    public void Parse_TenantRpmAndTpm_UpToABillionPerMinute()
    {
        var tenant = Assert.Single(TestConfig.Valid("[[tenants]]\nname = \"t\"\nrpm = 1000000000\ntpm = 1000000000\nmax_in_flight = 4").Tenants);

        Assert.Equal((1_000_000_000L, 1_000_000_000L, 4), (tenant.Rpm, tenant.Tpm, tenant.MaxInFlight));
        Assert.True(tenant.HasLimits);
    }

    [Fact]
    public void Parse_DuplicateClassNames_OtherRulesStillChecked()
    {
        var result = TestConfig.Load("[[classes]]\nname = \"a\"\n[[classes]]\nname = \"a\"\nweight = 0");

        Assert.Equal(["classes[1].name", "classes[1].weight"], result.Errors.Select(e => e.Key));
    }

    [Theory]
    [InlineData("[limits]\nbudget_overrun = \"truncate\"", 2, "limits.budget_overrun")]
    [InlineData("[limits]\nbudget_overrun = \"Cap\"", 2, "limits.budget_overrun")]
    [InlineData("[[prices]]\ninput_per_million = 1.0", 1, "prices[0].model")]
    [InlineData("[[prices]]\nmodel = \"m\"\n[[prices]]\nmodel = \"m\"", 4, "prices[1].model")]
    [InlineData("[[prices]]\nmodel = \"m\"\ninput_per_million = -1.0", 3, "prices[0].input_per_million")]
    [InlineData("[[prices]]\nmodel = \"m\"\noutput_per_million = inf", 3, "prices[0].output_per_million")]
    [InlineData("[[prices]]\nmodel = \"m\"\noutput_per_million = 100000.001", 3, "prices[0].output_per_million")]
    [InlineData("[[prices]]\nmodel = \"m\"\ncached_input_per_million = -0.5", 3, "prices[0].cached_input_per_million")]
    [InlineData("[[prices]]\nmodel = \"m\"\ninput_per_million = 0.0375", 3, "prices[0].input_per_million")]
    [InlineData("[[prices]]\nmodel = \"m\"\noutput_per_millon = 1.0", 3, "prices[0].output_per_millon")]
    public void Parse_InvalidBudgetOrPrice_ReportsKeyAndLine(string toml, int line, string key) =>
        AssertSingle(toml, line, key);

    [Fact]
    public void Parse_WorkerWithoutRpmOrTpm_IsNotPaced()
    {
        var snapshot = TestConfig.Valid("[[workers]]\nname = \"a\"\nurl = \"http://a\"");

        Assert.Null(snapshot.Workers[0].Pacing);
    }

    [Fact]
    public void Parse_PacedWorker_KeepsRpmMinusMarginAndTpmLessMarginPercent()
    {
        var snapshot = TestConfig.Valid("[pacing]\nsafety_margin = 3\nmax_wait = \"5s\"\n[[workers]]\nname = \"a\"\nurl = \"http://a\"\nrpm = 123\ntpm = 10000\n[[workers]]\nname = \"b\"\nurl = \"http://b\"\ntpm = 500\npacing_max_wait = \"250ms\"");

        var a = snapshot.Workers[0].Pacing!;
        Assert.Equal(120, a.RequestLimit);
        Assert.Equal(9700, a.TokenLimit);
        Assert.Equal(TimeSpan.FromMilliseconds(500), a.Spacing);
        Assert.Equal(TimeSpan.FromSeconds(5), a.MaxWait);
        var b = snapshot.Workers[1].Pacing!;
        Assert.Equal(0, b.RequestLimit);
        Assert.Equal(TimeSpan.Zero, b.Spacing);
        Assert.Equal(485, b.TokenLimit);
        Assert.Equal(TimeSpan.FromMilliseconds(250), b.MaxWait);
    }

    private static void AssertSingle(string toml, int line, string key)
    {
        var error = TestConfig.SingleError(toml);

        Assert.Equal(key, error.Key);
        Assert.Equal(line, error.Line);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }
}
