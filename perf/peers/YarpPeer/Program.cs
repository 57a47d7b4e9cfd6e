using System.Globalization;
using System.Runtime;
using Yarp.ReverseProxy.Configuration;

// yarp-peer --listen 127.0.0.1:18083 --upstream http://127.0.0.1:18081/
// (or YARP_PEER_LISTEN / YARP_PEER_UPSTREAM). One route, /{**catch-all}, to one destination,
// and GET /_stats with the runtime's counters for compare.sh's bytes-per-request and Gen2 columns.
var listen = Arg(args, "--listen") ?? Environment.GetEnvironmentVariable("YARP_PEER_LISTEN") ?? "127.0.0.1:18083";
var upstream = Arg(args, "--upstream") ?? Environment.GetEnvironmentVariable("YARP_PEER_UPSTREAM");
if (upstream is null || !Uri.TryCreate(upstream, UriKind.Absolute, out _))
{
    Console.Error.WriteLine("yarp-peer: --upstream http://HOST:PORT/ is required");
    return 2;
}

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.UseUrls($"http://{listen}");
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "backend", Match = new RouteMatch { Path = "/{**catch-all}" } }],
    [new ClusterConfig { ClusterId = "backend", Destinations = new Dictionary<string, DestinationConfig> { ["d0"] = new() { Address = upstream } } }]);

var app = builder.Build();

// A literal route outranks the catch-all, so this never reaches the backend.
app.MapGet("/_stats", () => Results.Text(Stats(), "application/json"));
app.MapReverseProxy();
await app.StartAsync();
Console.WriteLine($"yarp-peer ready: listen=http://{listen}/ upstream={upstream} gc={(GCSettings.IsServerGC ? "server" : "workstation")}");
await app.WaitForShutdownAsync();
return 0;

static string? Arg(string[] args, string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static string Stats() => string.Create(
    CultureInfo.InvariantCulture,
    $$"""{"allocated_bytes":{{GC.GetTotalAllocatedBytes(precise: false)}},"gen0_collections":{{GC.CollectionCount(0)}},"gen1_collections":{{GC.CollectionCount(1)}},"gen2_collections":{{GC.CollectionCount(2)}},"heap_bytes":{{GC.GetTotalMemory(false)}},"cpu_seconds":{{Environment.CpuUsage.TotalTime.TotalSeconds}}}""");
