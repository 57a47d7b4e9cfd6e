namespace AotProxy.Routing;

// vLLM's vllm:lora_requests_info as one scrape saw it: the adapters of running and of waiting
// requests, and max_lora (adapters resident at once). Masks index the worker's model list
// (VllmModelFilter.Models, bit i = model i), so a pick compares bits, never names; an adapter
// past the 64th model, or one the worker does not list, is only counted. Reported: the gauge was
// there (a worker without --enable-lora has none).
internal readonly record struct LoraAdapters(bool Reported, int MaxLora, int Running, int Waiting, ulong RunningMask, ulong WaitingMask)
{
    // The adapters of a mask, by name (/api/routing/stats).
    public static string[] Names(ulong mask, System.Collections.Immutable.ImmutableArray<string> models)
    {
        var names = new List<string>();
        for (var i = 0; i < Math.Min(64, models.Length); i++)
        {
            if ((mask & (1UL << i)) != 0)
            {
                names.Add(models[i]);
            }
        }

        return [.. names];
    }
}
