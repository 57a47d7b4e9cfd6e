using System.Globalization;
using System.Net;
using System.Text.Json;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests.Support;

// Replicas of the real binary (GatewayProcess: the AOT one in CI) on one real redis-server on
// loopback, in front of one simulated worker, each replica with a config file of its own in a
// temp folder: what ClusterTests, ClusterWorkerSlotsTests and ClusterFairShareTests share. The
// /api/cluster reads are static, so a test class can `using static` them.
internal sealed class ClusterFleet(RedisServer redis, SimulatedWorker worker, DirectoryInfo directory, int maxConcurrency, bool ledger) : IAsyncDisposable
{
    // A fifth of the defaults (1 s, 5 s): a killed replica leaves the list within about a second.
    public static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan MemberTtl = TimeSpan.FromSeconds(1);

    private readonly List<GatewayProcess> _replicas = [];

    public RedisServer Redis { get; } = redis;

    public SimulatedWorker Worker { get; } = worker;

    // Where the replicas' configs (and ledgers) are written; deleted with the fleet.
    public DirectoryInfo Directory { get; } = directory;

    // Every gateway started, in order, the killed ones included.
    public IReadOnlyList<GatewayProcess> Replicas => _replicas;

    // maxConcurrency: the worker's max_concurrency in every replica's config (by default the
    // simulator's own max_num_seqs). ledger: each replica writes its own usage ledger (NAME.db),
    // which the budget tests' re-seed reads; otherwise none.
    public static async Task<ClusterFleet> StartAsync(SimulatorOptions worker, int? maxConcurrency = null, bool ledger = false)
    {
        var redis = await RedisServer.StartAsync();
        var simulated = await SimulatedWorker.StartAsync(worker, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        return new ClusterFleet(redis, simulated, System.IO.Directory.CreateTempSubdirectory("aotproxy-cluster-"), maxConcurrency ?? worker.MaxNumSeqs, ledger);
    }

    // Starts replica `name` of TestGateway's gateway with the worker, its ledger and its [cluster]
    // section (extra is appended: tenants, [scheduler], ...), and waits until it is ready.
    public Task<GatewayProcess> StartReplicaAsync(string name, string extra = "", string storeDown = "local", string activityTimeout = "10s")
    {
        var ledgerPath = ledger ? Path.Combine(Directory.FullName, name + ".db") : "";
        var sections = string.Create(CultureInfo.InvariantCulture, $"""

            [[workers]]
            name = "{Worker.Options.Name}"
            url = "{Worker.BaseUri}"
            models = ["{Worker.Options.Model}"]
            max_concurrency = {maxConcurrency}

            [ledger]
            path = "{ledgerPath}"

            [cluster]
            redis_url = "{Redis.Url}"
            replica = "{name}"
            heartbeat = "{Heartbeat.TotalMilliseconds}ms"
            member_ttl = "{MemberTtl.TotalMilliseconds}ms"
            store_down = "{storeDown}"

            """);
        return StartGatewayAsync(name, TestGateway.Toml([], extra: sections + extra, activityTimeout: activityTimeout));
    }

    // Replicas of these names (StartReplicaAsync, each with `extra`), once each lists them all as
    // members: each then has its connection to the store.
    public async Task<GatewayProcess[]> StartMembersAsync(string[] names, string extra = "")
    {
        var replicas = new GatewayProcess[names.Length];
        for (var i = 0; i < names.Length; i++)
        {
            replicas[i] = await StartReplicaAsync(names[i], extra);
        }

        foreach (var replica in replicas)
        {
            await WaitForMembersAsync(replica, names);
        }

        return replicas;
    }

    // Any gateway config (e.g. one without [cluster]), written to NAME.toml; stopped with the fleet.
    public async Task<GatewayProcess> StartGatewayAsync(string name, string toml)
    {
        var config = Path.Combine(Directory.FullName, name + ".toml");
        await File.WriteAllTextAsync(config, toml);
        var gateway = GatewayProcess.Start("serve", "--config", config);
        _replicas.Add(gateway);
        await gateway.WaitForReadyAsync();
        return gateway;
    }

    // SIGKILL: no goodbye, so the others see it leave only when its record expires.
    public static async Task KillAsync(GatewayProcess replica)
    {
        replica.Kill();
        await replica.WaitForExitAsync(TimeSpan.FromSeconds(10));
    }

    public static async Task<JsonDocument> ClusterAsync(GatewayProcess replica)
    {
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        return JsonDocument.Parse(await admin.GetStringAsync("/api/cluster"));
    }

    public static async Task<bool> DegradedAsync(GatewayProcess replica)
    {
        using var cluster = await ClusterAsync(replica);
        return cluster.RootElement.GetProperty("degraded").GetBoolean();
    }

    public static async Task<string> MetricsAsync(GatewayProcess replica)
    {
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        return await admin.GetStringAsync("/metrics");
    }

    // Until the replica's list holds exactly these names (bounded by WaitUntilAsync's 10 s): then
    // it also has its connection to the store.
    public static Task WaitForMembersAsync(GatewayProcess replica, string[] names) =>
        TestGateway.WaitUntilAsync(
            async () =>
            {
                using var cluster = await ClusterAsync(replica);
                var listed = cluster.RootElement.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("name").GetString()).Order(StringComparer.Ordinal);
                return listed.SequenceEqual(names.Order(StringComparer.Ordinal));
            },
            $"the members are {string.Join(", ", names)}");

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in _replicas)
        {
            await replica.DisposeAsync();
        }

        await Worker.DisposeAsync();
        await Redis.DisposeAsync();
        Directory.Delete(recursive: true);
    }
}
