using System.Net;
using System.Text.Json;
using AotProxy.Configuration;
using AotProxy.Hosting;

namespace AotProxy.Tests.Configuration;

public sealed class ConfigLoaderTests
{
    private const string AcmeHash = "b05de8ecb6356ac645cac5a27099d33ce85cca81d9ea1ec34d03a1615efa5d73";

    // SPEC.md's example, verbatim except for the placeholder hash.
    private const string SpecExample = """
        [server]
        listen = "127.0.0.1:8080"            # data plane: the OpenAI API
        admin_listen = "127.0.0.1:9090"      # /metrics, /api/*, /dashboard
        admin_token_sha256 = ""              # when set, /api/* needs "Authorization: Bearer <token>"
        max_request_bytes = 4194304          # larger bodies: 413

        [routing]
        strategy = "p2c_kv"                  # round_robin | weighted_round_robin | least_queue |
                                             # least_connections | p2c_kv | consistent_hash | adaptive
        metrics_interval = "500ms"           # how often each worker's /metrics is scraped

        [[workers]]
        name = "gpu-0"                       # unique; used in metrics labels and admin paths
        url = "http://10.0.0.5:8000"         # base URL of an OpenAI-compatible server
        models = ["meta-llama/Llama-3.1-8B-Instruct"]  # omitted: discovered from GET /v1/models
        max_concurrency = 32                 # slots the gateway may fill on this worker
        weight = 1                           # for weighted strategies
        api_key = ""                         # sent upstream as a bearer token, when set

        [scheduler]
        policy = "fairshare"                 # fairshare | priority | bucket

        [[classes]]                          # service tiers: enterprise/premium/free, P0..P4, ...
        name = "enterprise"
        priority = 0                         # 0 is the most important
        weight = 70                          # share of capacity under saturation
        max_queue_wait = "30s"               # longer: 503 with Retry-After
        max_utilization = 1.0                # capacity guard: admit only below this fleet utilization

        [[tenants]]
        name = "acme"
        class = "enterprise"
        weight = 1                           # share within its class
        api_key_sha256 = ["b05de8ecb6356ac645cac5a27099d33ce85cca81d9ea1ec34d03a1615efa5d73"]   # `aotproxy hash-key KEY` prints it
        models = ["*"]                       # allowlist; "*" = all
        rpm = 0                              # 0 = unlimited
        tpm = 0
        max_in_flight = 0
        """;

    [Fact]
    public void Parse_EmptyFile_GivesDefaults()
    {
        var snapshot = TestConfig.Valid("");

        Assert.Equal(1, snapshot.Revision);
        Assert.Equal("test.toml", snapshot.Source);
        Assert.Equal(TestConfig.Now, snapshot.LoadedAt);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 8080), snapshot.Server.Listen);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9090), snapshot.Server.AdminListen);
        Assert.True(snapshot.Server.AdminTokenSha256.IsEmpty);
        Assert.Equal(4_194_304, snapshot.Server.MaxRequestBytes);
        Assert.Equal(TimeSpan.FromSeconds(30), snapshot.Server.ShutdownGrace);
        Assert.Equal((10_000, 32_768), (snapshot.Server.MaxConnections, snapshot.Server.MaxHeaderBytes));
        Assert.Equal(OperatingSystem.IsLinux() ? ListenerTransport.Epoll : ListenerTransport.Sockets, snapshot.Server.Transport);
        Assert.Equal(TimeSpan.FromSeconds(1), snapshot.Server.ParkIdleAfter);
        Assert.Equal("p2c_kv", snapshot.Routing.Strategy);
        Assert.Equal(TimeSpan.FromMilliseconds(500), snapshot.Routing.MetricsInterval);
        Assert.Equal(TimeSpan.FromSeconds(5), snapshot.Forwarding.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(120), snapshot.Forwarding.ActivityTimeout);
        Assert.Equal("fairshare", snapshot.Scheduler.Policy);
        Assert.Equal(1024, snapshot.Limits.DefaultMaxTokens);
        Assert.Empty(snapshot.Workers);
        Assert.Empty(snapshot.Tenants);
        var only = Assert.Single(snapshot.Classes);
        Assert.Equal(new ClassModel("default", 0, 1, TimeSpan.FromSeconds(30), 1.0, 0, 1, false), only);
        Assert.Same(only, snapshot.ClassesByName["default"]);
    }

    [Fact]
    public void Parse_EntryDefaults_AppliedToWorkersClassesAndTenants()
    {
        var snapshot = TestConfig.Valid("""
            [[workers]]
            name = "w"
            url = "http://w:8000"
            [[classes]]
            name = "default"
            [[tenants]]
            name = "t"
            """);

        var worker = Assert.Single(snapshot.Workers);
        Assert.Equal(new Uri("http://w:8000/"), worker.Url);
        Assert.True(worker.Models.IsEmpty);
        Assert.Equal(32, worker.MaxConcurrency);
        Assert.Equal(1, worker.Weight);
        Assert.Equal("", worker.ApiKey);
        Assert.Equal(new ClassModel("default", 0, 1, TimeSpan.FromSeconds(30), 1.0, 0, 1, false), Assert.Single(snapshot.Classes));
        var tenant = Assert.Single(snapshot.Tenants);
        Assert.Equal("default", tenant.Class);
        Assert.Equal(1, tenant.Weight);
        Assert.True(tenant.ApiKeySha256.IsEmpty);
        Assert.Equal(new[] { "*" }, tenant.Models.ToArray());
        Assert.Equal((0, 0, 0), (tenant.Rpm, tenant.Tpm, tenant.MaxInFlight));
    }

    [Fact]
    public void Parse_SpecExample_EveryKeyReachesTheModel()
    {
        var snapshot = TestConfig.Valid(SpecExample);

        Assert.Equal(IPEndPoint.Parse("127.0.0.1:8080"), snapshot.Server.Listen);
        Assert.Equal(IPEndPoint.Parse("127.0.0.1:9090"), snapshot.Server.AdminListen);
        Assert.True(snapshot.Server.AdminTokenSha256.IsEmpty);
        Assert.Equal(4_194_304, snapshot.Server.MaxRequestBytes);
        Assert.Equal("p2c_kv", snapshot.Routing.Strategy);
        Assert.Equal(TimeSpan.FromMilliseconds(500), snapshot.Routing.MetricsInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(400), snapshot.Routing.MetricsTimeout); // 80% of the interval
        Assert.Equal(new ScoreWeights(1.0, 0.5, 2.0, 0.3, 5.0), snapshot.Routing.Weights);
        Assert.Equal(new HealthModel(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), "/health", 3, 2), snapshot.Health);
        Assert.Equal(new CircuitBreakerModel(5, 2, TimeSpan.FromSeconds(30), 1, TimeSpan.FromSeconds(60)), snapshot.CircuitBreaker);
        Assert.Equal(new RetryModel(3, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1), 0.2), snapshot.Retries);
        var worker = Assert.Single(snapshot.Workers);
        Assert.Equal("gpu-0", worker.Name);
        Assert.Equal(new Uri("http://10.0.0.5:8000/"), worker.Url);
        Assert.Equal(new[] { "meta-llama/Llama-3.1-8B-Instruct" }, worker.Models.ToArray());
        Assert.Equal(32, worker.MaxConcurrency);
        Assert.Equal(1, worker.Weight);
        Assert.Equal("", worker.ApiKey);
        Assert.Equal("fairshare", snapshot.Scheduler.Policy);
        Assert.Equal(new ClassModel("enterprise", 0, 70, TimeSpan.FromSeconds(30), 1.0, 0, 1, false), Assert.Single(snapshot.Classes));
        var tenant = Assert.Single(snapshot.Tenants);
        Assert.Equal("acme", tenant.Name);
        Assert.Equal("enterprise", tenant.Class);
        Assert.Equal(1, tenant.Weight);
        Assert.Equal(Convert.FromHexString(AcmeHash), Assert.Single(tenant.ApiKeySha256).ToArray());
        Assert.Equal(new[] { "*" }, tenant.Models.ToArray());
        Assert.Equal((0, 0, 0), (tenant.Rpm, tenant.Tpm, tenant.MaxInFlight));
    }

    [Fact]
    public void Parse_NonDefaultValues_ReachTheModel()
    {
        var token = new string('A', 64);
        var snapshot = TestConfig.Valid($"""
            [server]
            listen = "0.0.0.0:80"
            admin_listen = "[::1]:9091"
            admin_token_sha256 = "{token}"
            max_request_bytes = 1024
            shutdown_grace = "1m30s"
            max_connections = 0
            max_header_bytes = 65536
            transport = "epoll"
            park_idle_after = "250ms"
            [routing]
            strategy = "consistent_hash"
            metrics_interval = "1.5s"
            metrics_timeout = "1s"
            weight_waiting = 1.5
            weight_running = 0.25
            weight_kv = 3.0
            weight_latency = 0.0
            weight_error = 10.0
            prefix_bonus = 4.0
            prefix_ttl = "30s"
            affinity_max_gap = 8.0
            affinity_max_ratio = 2.0
            hash_header = "x-user"
            virtual_nodes = 50
            hash_load_factor = 0.5
            epsilon = 0.05
            learning_rate = 0.5
            [health]
            interval = "10s"
            timeout = "1s"
            path = "/ping"
            unhealthy_threshold = 4
            healthy_threshold = 3
            [circuit_breaker]
            failure_threshold = 7
            success_threshold = 3
            open_timeout = "5s"
            half_open_max_requests = 2
            slow_call_threshold = "20s"
            [retries]
            max_attempts = 2
            backoff_base = "10ms"
            backoff_max = "100ms"
            budget_ratio = 0.1
            [forwarding]
            connect_timeout = "250ms"
            activity_timeout = "1h"
            [scheduler]
            policy = "bucket"
            [[workers]]
            name = "a"
            url = "https://gpu.example/base"
            models = ["m1", "m2"]
            max_concurrency = 256
            weight = 3
            api_key = "upstream-secret"
            [[classes]]
            name = "free"
            priority = 9
            weight = 5
            max_queue_wait = "5s"
            max_utilization = 0.5
            ttft_sla = "1500ms"
            [[tenants]]
            name = "t"
            class = "free"
            weight = 2
            api_key_sha256 = ["{AcmeHash.ToUpperInvariant()}"]
            models = ["m1"]
            rpm = 60
            tpm = 100000
            max_in_flight = 4
            """);

        Assert.Equal(new IPEndPoint(IPAddress.Any, 80), snapshot.Server.Listen);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 9091), snapshot.Server.AdminListen);
        Assert.Equal(Enumerable.Repeat((byte)0xAA, 32), snapshot.Server.AdminTokenSha256);
        Assert.Equal(1024, snapshot.Server.MaxRequestBytes);
        Assert.Equal(TimeSpan.FromSeconds(90), snapshot.Server.ShutdownGrace);
        Assert.Equal((0, 65_536), (snapshot.Server.MaxConnections, snapshot.Server.MaxHeaderBytes));
        Assert.Equal(ListenerTransport.Epoll, snapshot.Server.Transport);
        Assert.Equal(TimeSpan.FromMilliseconds(250), snapshot.Server.ParkIdleAfter);
        Assert.Equal(
            new RoutingModel("consistent_hash", TimeSpan.FromMilliseconds(1500), TimeSpan.FromSeconds(1), new ScoreWeights(1.5, 0.25, 3.0, 0.0, 10.0), 4.0, TimeSpan.FromSeconds(30), 8.0, 2.0, "x-user", 50, 0.5, 0.05, 0.5, Warmup: true),
            snapshot.Routing);
        Assert.Equal(new HealthModel(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1), "/ping", 4, 3), snapshot.Health);
        Assert.Equal(new CircuitBreakerModel(7, 3, TimeSpan.FromSeconds(5), 2, TimeSpan.FromSeconds(20)), snapshot.CircuitBreaker);
        Assert.Equal(new RetryModel(2, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(100), 0.1), snapshot.Retries);
        Assert.Equal(
            (TimeSpan.FromMilliseconds(250), TimeSpan.FromHours(1), TimeSpan.FromSeconds(60)),
            (snapshot.Forwarding.ConnectTimeout, snapshot.Forwarding.ActivityTimeout, snapshot.Forwarding.StreamIdleTimeout));
        Assert.Equal("bucket", snapshot.Scheduler.Policy);
        var worker = Assert.Single(snapshot.Workers);
        Assert.Equal(new Uri("https://gpu.example/base/"), worker.Url);
        Assert.Equal(new[] { "m1", "m2" }, worker.Models.ToArray());
        Assert.Equal((256, 3, "upstream-secret"), (worker.MaxConcurrency, worker.Weight, worker.ApiKey));
        Assert.Equal(new ClassModel("free", 9, 5, TimeSpan.FromSeconds(5), 0.5, 8, 9, false) { TtftSla = TimeSpan.FromMilliseconds(1500) }, Assert.Single(snapshot.Classes));
        var tenant = Assert.Single(snapshot.Tenants);
        Assert.Equal(("free", 2), (tenant.Class, tenant.Weight));
        Assert.Equal(Convert.FromHexString(AcmeHash), Assert.Single(tenant.ApiKeySha256).ToArray());
        Assert.Equal(new[] { "m1" }, tenant.Models.ToArray());
        Assert.Equal((60, 100000, 4), (tenant.Rpm, tenant.Tpm, tenant.MaxInFlight));
    }

    [Fact]
    public void Parse_LocalhostListen_IsLoopback()
    {
        var snapshot = TestConfig.Valid("[server]\nlisten = \"localhost:0\"\nadmin_listen = \"localhost:0\"");

        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 0), snapshot.Server.Listen);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 0), snapshot.Server.AdminListen);
    }

    [Fact]
    public void Parse_InlineArrayOfWorkers_IsAccepted()
    {
        var snapshot = TestConfig.Valid("workers = [ { name = \"a\", url = \"http://a\" }, { name = \"b\", url = \"http://b\" } ]");

        Assert.Equal(["a", "b"], snapshot.Workers.Select(w => w.Name));
    }

    [Fact]
    public void Parse_TableReopenedAfterAnother_KeepsItsValues()
    {
        var snapshot = TestConfig.Valid("""
            [[workers]]
            name = "a"
            url = "http://a"
            [server]
            max_request_bytes = 1000
            [[workers]]
            name = "b"
            url = "http://b"
            [routing]
            strategy = "round_robin"
            [[workers]]
            name = "c"
            url = "http://c"
            """);

        Assert.Equal(["a", "b", "c"], snapshot.Workers.Select(w => w.Name));
        Assert.Equal(1000, snapshot.Server.MaxRequestBytes);
        Assert.Equal("round_robin", snapshot.Routing.Strategy);
    }

    [Fact]
    public void Parse_SubTableReopenedLater_ReportsItAndKeepsTheTable()
    {
        var result = TestConfig.Load("""
            [server]
            listen = "nope"
            [[workers]]
            name = "a"
            url = "http://a"
            [server.tls]
            cert = "x"
            """);

        Assert.Equal([(2, "server.listen"), (6, "server.tls")], result.Errors.Select(e => (e.Line, e.Key)));
    }

    [Fact]
    public void Parse_TypeErrorInRegroupedSection_ReportsOriginalLine()
    {
        var error = TestConfig.SingleError("""
            [[workers]]
            name = "a"
            url = "http://a"
            [server]
            listen = "127.0.0.1:1"
            [[workers]]
            name = "b"
            url = "http://b"
            max_concurrency = "x"
            """);

        Assert.Equal((9, "workers[1].max_concurrency"), (error.Line, error.Key));
    }

    [Theory]
    [InlineData("bogus = 1", 1, "bogus")]
    [InlineData("[server]\nlisten = \"127.0.0.1:8080\"\nlisten_addr = \"x\"", 3, "server.listen_addr")]
    [InlineData("[server]\nListen = \"127.0.0.1:8080\"", 2, "server.Listen")]
    [InlineData("[routing]\n\nstrategy = \"p2c_kv\"\nstrategie = \"p2c_kv\"", 4, "routing.strategie")]
    [InlineData("[forwarding]\nread_timeout = \"5s\"", 2, "forwarding.read_timeout")]
    [InlineData("[scheduler]\npolcy = \"priority\"", 2, "scheduler.polcy")]
    [InlineData("[server.tls]\ncert = \"x\"", 1, "server.tls")]
    [InlineData("server.tls.cert = \"x\"", 1, "server.tls")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\n\n[[workers]]\nname = \"b\"\nurl = \"http://b\"\nmax_concurency = 8", 8, "workers[1].max_concurency")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\n[workers.extra]\nx = 1", 4, "workers[0].extra")]
    [InlineData("workers = [ { name = \"a\", url = \"http://a\", tyop = 1 } ]", 1, "workers[0].tyop")]
    [InlineData("[[classes]]\nname = \"default\"\nmax_wait = \"1s\"", 3, "classes[0].max_wait")]
    [InlineData("[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"b\"\nrmp = 10", 5, "tenants[1].rmp")]
    public void Parse_UnknownKey_ReportedWithPathAndLine(string toml, int line, string key)
    {
        var error = TestConfig.SingleError(toml);

        Assert.Equal(key, error.Key);
        Assert.Equal(line, error.Line);
        Assert.Contains("unknown key", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[server]\nlisten = \n", 2)]
    [InlineData("[server]\n\n\nlisten = \"unterminated\n", 4)]
    [InlineData("[server\nlisten = \"x\"", 1)]
    [InlineData("[server]\nlisten = \"a:1\"\nlisten = \"b:1\"", 3)]
    [InlineData("[server]\n[server]", 2)]
    [InlineData("[server]\nlisten = \"a:1\"\n[[workers]]\nname = \"w\"\n[server]\nadmin_listen = \"a:2\"", 5)]
    [InlineData("[[tenants]]\nname = \"a\"\nrpm = 1\nname = \"b\"", 4)]
    public void Parse_SyntaxError_ReportedWithLine(string toml, int line)
    {
        var result = TestConfig.Load(toml);

        Assert.False(result.IsValid);
        Assert.Equal(line, result.Errors[0].Line);
        Assert.False(string.IsNullOrWhiteSpace(result.Errors[0].Message));
    }

    [Theory]
    [InlineData("[server]\nmax_request_bytes = \"big\"", 2, "server.max_request_bytes", "expected an integer, found a string")]
    [InlineData("[server]\nlisten = 8080", 2, "server.listen", "expected a string, found an integer")]
    [InlineData("[[classes]]\nname = \"c\"\nmax_utilization = \"most\"", 3, "classes[0].max_utilization", "expected a number, found a string")]
    [InlineData("[[workers]]\nname = \"a\"\nurl = \"http://a\"\nmax_concurrency = 99999999999", 4, "workers[0].max_concurrency", "TOML integer value 99999999999 is out of range")]
    [InlineData("[[tenants]]\nname = \"t\"\napi_key_sha256 = [\n  \"aa\",\n  5,\n]", 5, "tenants[0].api_key_sha256[1]", "expected a string, found an integer")]
    [InlineData("[[tenants]]\nname = \"t\"\nmodels = \"*\"", 3, "tenants[0].models", "expected an array, found a string")]
    public void Parse_WrongType_ReportedWithKeyAndLine(string toml, int line, string key, string message)
    {
        var error = TestConfig.SingleError(toml);

        Assert.Equal((line, key, message), (error.Line, error.Key, error.Message));
    }

    [Theory]
    [InlineData("\n[[server]]\nlisten = \"127.0.0.1:1\"", 2, "server", "[server]")]
    [InlineData("routing = \"p2c_kv\"", 1, "routing", "[routing]")]
    [InlineData("[workers]\nname = \"a\"", 1, "workers", "[[workers]]")]
    [InlineData("tenants = 3", 1, "tenants", "[[tenants]]")]
    [InlineData("\n\n[[limits]]\ndefault_max_tokens = 5", 3, "limits", "[limits]")]
    public void Parse_WrongTableShape_ReportedWithLine(string toml, int line, string key, string hint)
    {
        var error = TestConfig.SingleError(toml);

        Assert.Equal((line, key), (error.Line, error.Key));
        Assert.Contains(hint, error.Message, StringComparison.Ordinal);
    }

    // Issue 15, item 3: the shape check knows every table of GatewayConfig (the hand-kept list
    // it replaced left these out, and Tomlyn's binder answered "expected a table, found an integer").
    [Theory]
    [InlineData("health = 5", "health", "must be a table, written [health]")]
    [InlineData("circuit_breaker = 5", "circuit_breaker", "must be a table, written [circuit_breaker]")]
    [InlineData("retries = 5", "retries", "must be a table, written [retries]")]
    [InlineData("pacing = \"fast\"", "pacing", "must be a table, written [pacing]")]
    [InlineData("[prices]\nmodel = \"m\"", "prices", "must be an array of tables, written [[prices]]")]
    [InlineData("prices = 5", "prices", "must be an array of tables, written [[prices]]")]
    public void Parse_WrongShapeOfAnyTable_SaysHowToWriteIt(string toml, string key, string message)
    {
        var error = TestConfig.SingleError(toml);

        Assert.Equal((1, key, message), (error.Line, error.Key, error.Message));
    }

    // The shape check's sections are GatewayConfig's, named as the binder names them: a key
    // that no section has is reported in that section, not at the top level.
    [Fact]
    public void ConfigSections_AreEveryTableOfGatewayConfig_NamedAsTheBinderNamesThem()
    {
        Assert.Equal(
            ["server", "routing", "forwarding", "health", "circuit_breaker", "retries", "scheduler", "limits", "pacing", "auth", "jwt", "ledger", "cluster", "store", "telemetry", "response_cache"],
            ConfigSections.Tables.ToArray());
        Assert.Equal(["workers", "classes", "tenants", "time_windows", "prices", "admin_tokens", "models"], ConfigSections.TableArrays.ToArray());
        foreach (var table in ConfigSections.Tables)
        {
            Assert.Contains(TestConfig.Load($"[{table}]\nnot_a_key = 1").Errors, e => e.Key == $"{table}.not_a_key");
        }

        foreach (var array in ConfigSections.TableArrays)
        {
            Assert.Contains(TestConfig.Load($"[[{array}]]\nnot_a_key = 1").Errors, e => e.Key == $"{array}[0].not_a_key");
        }
    }

    // Every shape error at once, as every other config problem (today's first stopped the rest).
    [Fact]
    public void Parse_TwoShapeErrors_BothReported()
    {
        var result = TestConfig.Load("health = 1\n[server]\nlisten = \"127.0.0.1:1\"\n[[retries]]\nmax_attempts = 2\n");

        Assert.Equal(
            [(1, "health", "must be a table, written [health]"), (4, "retries", "must be a table, written [retries]")],
            result.Errors.Select(e => (e.Line, e.Key, e.Message)));
    }

    [Fact]
    public void Parse_SeveralProblems_AllReportedInLineOrder()
    {
        var result = TestConfig.Load("""
            typo = 1
            [server]
            max_request_bytes = 0
            [routing]
            strategy = "random"
            [[workers]]
            name = "a"
            url = "ftp://a"
            weight = 0
            [[tenants]]
            name = "t"
            class = "gold"
            """);

        Assert.False(result.IsValid);
        Assert.Equal(
            [(1, "typo"), (3, "server.max_request_bytes"), (5, "routing.strategy"), (8, "workers[0].url"), (9, "workers[0].weight"), (12, "tenants[0].class")],
            result.Errors.Select(e => (e.Line, e.Key)));
    }

    [Fact]
    public void Parse_AppendedWorkersAfterDemoConfig_AreParsed()
    {
        var demo = File.ReadAllText(Path.Combine(TestConfig.RepoRoot(), "configs", "demo.toml"));
        var text = demo + "\n[[workers]]\nname = \"sim-0\"\nurl = \"http://127.0.0.1:41000\"\n\n[[workers]]\nname = \"sim-1\"\nurl = \"http://127.0.0.1:41001\"\n";

        var snapshot = TestConfig.Valid(text);

        Assert.Equal(["sim-0", "sim-1"], snapshot.Workers.Select(w => w.Name));
        Assert.Equal("demo", Assert.Single(snapshot.Tenants).Name);
    }

    [Theory]
    [InlineData("aotproxy.toml")]
    [InlineData("demo.toml")]
    public void LoadFile_ShippedConfigs_AreValid(string name)
    {
        var path = Path.Combine(TestConfig.RepoRoot(), "configs", name);

        var result = ConfigLoader.LoadFile(path, 7, TimeProvider.System);

        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(7, result.Snapshot.Revision);
        Assert.Equal(Path.GetFullPath(path), result.Snapshot.Source);
    }

    [Fact]
    public void LoadFile_DemoConfig_HasDemoTenantWithDemoKeyAndNoWorkers()
    {
        var result = ConfigLoader.LoadFile(Path.Combine(TestConfig.RepoRoot(), "configs", "demo.toml"), 1, TimeProvider.System);

        Assert.True(result.IsValid, result.ToString());
        Assert.Empty(result.Snapshot.Workers);
        Assert.Equal("p2c_kv", result.Snapshot.Routing.Strategy);
        var tenant = Assert.Single(result.Snapshot.Tenants);
        Assert.Equal("demo", tenant.Name);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData("sk-demo-key"u8), Assert.Single(tenant.ApiKeySha256).ToArray());
    }

    [Fact]
    public void LoadFile_ShippedConfig_DocumentsEveryKey()
    {
        var text = File.ReadAllText(Path.Combine(TestConfig.RepoRoot(), "configs", "aotproxy.toml"));
        var map = TomlKeyMap.Build(text);
        var sections = new (string Path, Type Type)[]
        {
            ("server", typeof(ServerConfig)),
            ("routing", typeof(RoutingConfig)),
            ("forwarding", typeof(ForwardingConfig)),
            ("health", typeof(HealthConfig)),
            ("circuit_breaker", typeof(CircuitBreakerConfig)),
            ("retries", typeof(RetryConfig)),
            ("scheduler", typeof(SchedulerConfig)),
            ("limits", typeof(LimitsConfig)),
            ("workers[0]", typeof(WorkerConfig)),
            ("classes[0]", typeof(ClassConfig)),
            ("tenants[0]", typeof(TenantConfig)),
            ("time_windows[0]", typeof(TimeWindowConfig)),
            ("prices[0]", typeof(PriceConfig)),
            ("auth", typeof(AuthConfig)),
            ("jwt", typeof(JwtConfig)),
        };

        // Reflection is fine here: the test is not AOT-compiled, and it keeps the list of keys
        // in one place (the Config records).
        var missing = sections
            .SelectMany(s => s.Type.GetProperties()
                .Where(p => p.Name != nameof(ServerConfig.Unknown))
                .Select(p => $"{s.Path}.{JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name)}"))
            .Where(key => !map.Contains(key))
            .ToList();

        Assert.Empty(missing);
    }

    [Fact]
    public void ReadEmbedded_DemoToml_MatchesConfigsFile()
    {
        var embedded = ConfigLoader.ReadEmbedded(ConfigLoader.DemoResourceName);

        Assert.Equal(File.ReadAllText(Path.Combine(TestConfig.RepoRoot(), "configs", "demo.toml")), embedded);
    }

    [Fact]
    public void LoadFile_Directory_IsAnErrorNotAnException()
    {
        var result = ConfigLoader.LoadFile(Path.GetTempPath(), 1, TimeProvider.System);

        Assert.Contains("directory", Assert.Single(result.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadFile_MissingFile_IsAnErrorNotAnException()
    {
        var path = Path.Combine(Path.GetTempPath(), $"aotproxy-missing-{Guid.NewGuid():N}.toml");

        var result = ConfigLoader.LoadFile(path, 1, TimeProvider.System);

        var error = Assert.Single(result.Errors);
        Assert.Equal(0, error.Line);
        Assert.Equal($"cannot read {path}: no such file", error.Message);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("0s")]
    public void Parse_ParkIdleAfterZero_TurnsParkingOff(string value)
    {
        var snapshot = TestConfig.Valid($"[server]\npark_idle_after = \"{value}\"");
        Assert.Equal(TimeSpan.Zero, snapshot.Server.ParkIdleAfter);
    }
}
