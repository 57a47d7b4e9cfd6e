using AotProxy.Hosting.Parking;
using Prometheus;

namespace AotProxy.Http;

// Parked keep-alive connections (server.park_idle_after), set at scrape time from the listener's
// counters: the connections pay nothing for them.
internal sealed class ConnectionTelemetry(CollectorRegistry registry)
{
    public void CollectFrom(ConnectionParking parking)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        var parked = factory.CreateGauge("llm_gateway_parked_connections", "Idle keep-alive client connections parked outside Kestrel's HTTP state (server.park_idle_after).");
        var parks = factory.CreateCounter("llm_gateway_connection_parks_total", "Times an idle keep-alive client connection was parked (once per idle period).");
        registry.AddBeforeCollectCallback(() =>
        {
            parked.Set(parking.Parked);
            parks.IncTo(parking.Parks);
        });
    }
}
