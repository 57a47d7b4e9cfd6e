using System.Collections.Immutable;

namespace AotProxy.Configuration;

// The outcome of the latest load or reload, for /api/status and
// llm_gateway_config_reloads_total{result}. Revision is the one in force afterwards:
// the new one when Ok, the unchanged old one when the change was rejected.
internal sealed record ReloadStatus(DateTimeOffset At, bool Ok, long Revision, ImmutableArray<ConfigError> Errors)
{
    public string Result => Ok ? "ok" : "error"; // the `result` label of llm_gateway_config_reloads_total
}
