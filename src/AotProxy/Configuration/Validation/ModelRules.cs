using System.Collections.Frozen;

namespace AotProxy.Configuration.Validation;

// [[models]]: per-model settings, by unique name.
internal static class ModelRules
{
    // The per-model stream idle windows (models without one are left out).
    public static FrozenDictionary<string, TimeSpan> StreamIdleTimeouts(ValidationContext context, IReadOnlyList<ModelConfig> models)
    {
        var windows = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < models.Count; i++)
        {
            var model = models[i];
            var at = $"models[{i}]";
            context.Unknown(at, model.Unknown);
            if (context.Name($"{at}.name", model.Name, "model", names, i, "models") && model.StreamIdleTimeout.Length > 0)
            {
                windows[model.Name] = context.Positive($"{at}.stream_idle_timeout", model.StreamIdleTimeout);
            }
        }

        return windows.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
