using Prometheus;

namespace AotProxy.Configuration;

// Config reloads by result (ConfigStore.Reloaded); both series exist from the start, so that an
// alert on `error` has a zero to rise from.
internal sealed class ConfigTelemetry
{
    private readonly Counter _reloads;

    public ConfigTelemetry(CollectorRegistry registry)
    {
        _reloads = Metrics.WithCustomRegistry(registry).CreateCounter("llm_gateway_config_reloads_total", "Config reloads by result.", ["result"]);
        _reloads.WithLabels("ok");
        _reloads.WithLabels("error");
    }

    public void CountReload(ReloadStatus status) => _reloads.WithLabels(status.Result).Inc();
}
