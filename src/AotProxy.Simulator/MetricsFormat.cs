namespace AotProxy.Simulator;

// Which generation of vLLM's /metrics names the simulator serves. Gateways meet both in the wild.
public enum MetricsFormat
{
    // vLLM V1 engine (0.9 and later): kv_cache_usage_perc, prefix_cache_*, labels engine + model_name.
    V1,

    // vLLM V0 engine (0.6/0.7): gpu_cache_usage_perc, gpu_prefix_cache_*, label model_name only.
    V0,
}
