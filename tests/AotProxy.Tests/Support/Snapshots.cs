using System.Collections.Immutable;
using System.Net;
using AotProxy.Configuration;

namespace AotProxy.Tests.Support;

// Model snapshots built directly, for tests of the stages after configuration.
internal static class Snapshots
{
    public static GatewaySnapshot Create(IEnumerable<WorkerModel>? workers = null, IEnumerable<TenantModel>? tenants = null, long revision = 1) => new(
        revision,
        DateTimeOffset.UnixEpoch,
        "<test>",
        new ServerModel(new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(IPAddress.Loopback, 0), [], 4 * 1024 * 1024, TimeSpan.FromSeconds(5)),
        new ForwardingModel(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)),
        new RoutingModel("round_robin", TimeSpan.FromMilliseconds(500)),
        new SchedulerModel("fairshare"),
        [.. workers ?? []],
        [new ClassModel("default", 0, 1, TimeSpan.FromSeconds(30), 1.0)],
        [.. tenants ?? []]);

    public static WorkerModel Worker(string name, string url, params string[] models) =>
        new(name, new Uri(url), [.. models], 32, 1, string.Empty);
}
