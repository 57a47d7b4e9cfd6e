using System.Net;
using AotProxy.Configuration;

namespace AotProxy.Tests.Support;

// Model snapshots built directly, for tests of the stages after configuration.
internal static class Snapshots
{
    // Every routing-side model at its documented default, as the validator derives it.
    public static GatewaySnapshot Defaults { get; } = ConfigLoader.Parse("[routing]\nstrategy = \"round_robin\"\n", "<defaults>", 1, TimeProvider.System).Snapshot!;

    public static GatewaySnapshot Create(IEnumerable<WorkerModel>? workers = null, IEnumerable<TenantModel>? tenants = null, long revision = 1, RoutingModel? routing = null, SchedulerModel? scheduler = null, ForwardingModel? forwarding = null) => GatewaySnapshotFactory.Create(
        revision,
        DateTimeOffset.UnixEpoch,
        "<test>",
        new ServerModel(new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(IPAddress.Loopback, 0), [], 4 * 1024 * 1024, TimeSpan.FromSeconds(5)),
        forwarding ?? new ForwardingModel(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)),
        routing ?? Defaults.Routing,
        Defaults.Health,
        Defaults.CircuitBreaker,
        Defaults.Retries,
        scheduler ?? Defaults.Scheduler,
        LimitsModel.Default,
        PricesModel.None,
        LedgerModel.Off,
        [.. workers ?? []],
        [.. Defaults.Classes],
        [.. tenants ?? []],
        AuthModel.Off,
        JwtModel.Off,
        []);

    public static WorkerModel Worker(string name, string url, params string[] models) =>
        new(name, new Uri(url), [.. models], 32, 1, string.Empty);
}
