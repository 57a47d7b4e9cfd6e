using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AotProxy.Accounting;
using AotProxy.Admin;
using AotProxy.Admin.Contracts;
using AotProxy.Admin.Dashboard;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// The live console's cost on the admin plane (issue 18): one state built from AdminReports and
// serialized to its SSE message, with 100 workers and 1,000 tenants (rpm, tpm and a token budget each)
// and 50 recent errors. Tick: what the feed builds once a second and writes to every stream.
// Connect: a new stream's first message, with five minutes of history for each worker. The peer
// (baseline): what a page that polls would make the gateway do per client and second instead,
// the five GETs /api/status, /api/workers, /api/queues, /api/tenants and
// /api/circuit-breaker/stats, serialized as AdminHandler writes them.
[MemoryDiagnoser]
public class DashboardStateBenchmarks
{
    private const int Workers = 100;
    private const int Tenants = 1000;

    private readonly ArrayBufferWriter<byte> _sink = new(1 << 20); // reused, as a response body pipe is
    private HeapCompaction _compaction = null!;
    private DashboardFeed _feed = null!;
    private AdminReports _reports = null!;

    [GlobalSetup]
    public void Setup()
    {
        var time = TimeProvider.System;
        var toml = new StringBuilder();
        for (var i = 0; i < Tenants; i++)
        {
            toml.Append($"[[tenants]]\nname = \"tenant-{i:D4}\"\napi_key_sha256 = [\"{i:x64}\"]\nrpm = 600\ntpm = 100000\nweight = {1 + (i % 4)}\nbudget_tokens = 5000000\n\n");
        }

        for (var i = 0; i < Workers; i++)
        {
            toml.Append($"[[workers]]\nname = \"gpu-{i:D3}\"\nurl = \"http://127.0.0.1:{20000 + i}/\"\nmodels = [\"model-{i % 4}\"]\nmax_concurrency = 64\n\n");
        }

        var loaded = ConfigLoader.Parse(toml.ToString(), "<bench>", 1, time);
        var snapshot = loaded.Snapshot ?? throw new InvalidOperationException(string.Join('\n', loaded.Errors));
        var telemetry = new GatewayTelemetry(time);
        var capacity = new CapacitySignal(time);
        var limits = new TenantLimits(time);
        var admissions = new AdmissionController(new WaiterPool(time, 1024), telemetry.Admission, time, new Router(time, new Random(7), NullLogger.Instance), capacity);
        _compaction = new HeapCompaction(time, NullLogger.Instance);
        var state = new GatewayState(snapshot, new WorkerRegistry(time, capacity), limits, admissions, new AotProxy.Caching.ResponseCache(time), _compaction, NullLogger.Instance);
        var config = new ConfigStore(snapshot, null, time, NullLogger.Instance);
        _reports = new AdminReports(config, state, admissions, limits, new UsageRecorder(telemetry.Usage, time), telemetry.Forwarding, null, null, time);
        for (var i = 0; i < RecentErrors.DefaultCapacity; i++)
        {
            telemetry.Errors.Add(503, "admission_refused", $"tenant-{i:D4}", "model-0", "", "queue_full");
        }

        var history = new WorkerHistory();
        var workers = _reports.Workers();
        for (var second = 0; second < WorkerHistory.DefaultCapacity; second++)
        {
            history.Sample(second, workers);
        }

        _feed = new DashboardFeed(_reports, telemetry.Requests, telemetry.Errors, new AdminChanges(), () => [], null, time, NullLogger.Instance, history);
        Console.WriteLine($"// tick message: {Tick()} B, connect message: {Connect()} B, polled GETs: {PollingApi()} B");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _feed.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _compaction.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true)]
    public long PollingApi()
    {
        _sink.ResetWrittenCount();
        Write(_reports.Status(), AdminJsonContext.Default.StatusResponse);
        Write(_reports.Workers(), AdminJsonContext.Default.WorkerReportArray);
        Write(_reports.Queues(), AdminJsonContext.Default.QueuesResponse);
        Write(_reports.Tenants(), AdminJsonContext.Default.TenantReportArray);
        Write(_reports.Breakers(), AdminJsonContext.Default.BreakerReportArray);
        return _sink.WrittenCount;
    }

    [Benchmark]
    public int Tick() => _feed.Publishing(_feed.Build("tick", all: false)).Length;

    [Benchmark]
    public int Connect() => DashboardFeed.Message(_feed.Build("connect", all: true)).Length;

    private void Write<T>(T value, JsonTypeInfo<T> type)
    {
        using var json = new Utf8JsonWriter(_sink, new JsonWriterOptions { Indented = true });
        JsonSerializer.Serialize(json, value, type);
    }
}
