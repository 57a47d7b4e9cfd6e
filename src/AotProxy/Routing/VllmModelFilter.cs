using System.Collections.Immutable;
using System.Text;

namespace AotProxy.Routing;

// Which series of a worker's /metrics count: those whose model_name is one of the worker's models.
// vLLM labels every vllm:* series with model_name (its served model name); a worker that serves
// several models, or a shared endpoint, must not lend one model's queue to another model's pool.
// A series without model_name (cache_config_info, exporters that do not label by model) counts.
// Built once per model list and shared by every scrape; the empty filter accepts everything.
internal sealed class VllmModelFilter
{
    private readonly byte[][] _names;

    public VllmModelFilter(ImmutableArray<string> models)
    {
        Models = models.IsDefault ? [] : models;
        _names = [.. Models.Select(Encoding.UTF8.GetBytes)];
    }

    public static VllmModelFilter All { get; } = new([]);

    // As given, so that the caller can tell whether a worker's models changed and a new filter is due.
    public ImmutableArray<string> Models { get; }

    public bool IsEmpty => _names.Length == 0;

    // `labels`: a sample's label set as PrometheusLine.Parse returns it.
    public bool Accepts(ReadOnlySpan<byte> labels) =>
        _names.Length == 0 || !PrometheusLabels.TryFind(labels, "model_name"u8, out var model) || IndexOf(model) >= 0;

    // The position of a model (an escaped label value) in Models, or -1.
    public int IndexOf(ReadOnlySpan<byte> escapedName)
    {
        for (var i = 0; i < _names.Length; i++)
        {
            if (PrometheusLabels.ValueEquals(escapedName, _names[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
