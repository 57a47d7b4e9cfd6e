using AotProxy.Gateway;
using AotProxy.Hosting.Parking;
using Prometheus;
using static AotProxy.Gateway.TelemetrySeries;

namespace AotProxy.Http;

// Parked keep-alive connections (server.park_idle_after) and the collections that free what they
// left, set at scrape time from their counters: the connections pay nothing for them.
internal sealed class ConnectionTelemetry(CollectorRegistry registry)
{
    public void CollectFrom(ConnectionParking parking, ParkedCollection collection)
    {
        GaugeFrom(registry, "llm_gateway_parked_connections", "Idle keep-alive client connections parked outside Kestrel's HTTP state (server.park_idle_after).", () => parking.Parked);
        CounterFrom(registry, "llm_gateway_connection_parks_total", "Times an idle keep-alive client connection was parked (once per idle period).", () => parking.Parks);
        CounterFrom(registry, "llm_gateway_idle_collections_total", "Full garbage collections after a batch of parks (256 since the last one) while no request was in flight: they give the parked connections' HTTP state back to the OS.", () => collection.Collections);
        CounterFrom(registry, "llm_gateway_idle_collection_pause_seconds_total", "Time the process stood still in those collections.", () => collection.Paused.TotalSeconds);
    }
}
