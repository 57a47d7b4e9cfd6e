using System.Collections.Frozen;
using System.Collections.Immutable;

namespace AotProxy.Configuration.Validation;

// [[models]]: per-model settings and aliases, by unique name. A target no worker serves is no
// error: workers without `models` report theirs only once they answer, and a reload must not
// fail while one is down; a request for such an alias is then 503 until a target is served.
internal static class ModelRules
{
    private static readonly FrozenDictionary<string, ModelCapabilities> CapabilityNames = new Dictionary<string, ModelCapabilities>(StringComparer.Ordinal)
    {
        ["chat"] = ModelCapabilities.Chat,
        ["tools"] = ModelCapabilities.Tools,
        ["vision"] = ModelCapabilities.Vision,
        ["embeddings"] = ModelCapabilities.Embeddings,
        ["transcription"] = ModelCapabilities.Transcription,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    // The catalog, and the per-model stream idle windows (models without one are left out).
    public static (ModelCatalog Catalog, FrozenDictionary<string, TimeSpan> StreamIdleTimeouts) Validate(
        ValidationContext context, IReadOnlyList<ModelConfig> models, ImmutableArray<WorkerModel> workers)
    {
        var windows = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var entries = new Dictionary<string, ModelEntry>(StringComparer.Ordinal);
        var aliases = models.Where(m => m.Targets.Count > 0).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        var served = workers.SelectMany(w => w.Models).ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < models.Count; i++)
        {
            var model = models[i];
            var at = $"models[{i}]";
            context.Unknown(at, model.Unknown);
            if (!context.Name($"{at}.name", model.Name, "model", names, i, "models"))
            {
                continue;
            }

            if (model.Name == ModelCatalog.Auto)
            {
                context.Error($"{at}.name", "\"auto\" is the gateway's own choice of model and cannot be configured");
            }

            if (model.StreamIdleTimeout.Length > 0)
            {
                windows[model.Name] = context.Positive($"{at}.stream_idle_timeout", model.StreamIdleTimeout);
            }

            Targets(context, at, model, aliases, served);
            if (model.MaxTokens < 0)
            {
                context.Error($"{at}.max_tokens", "must be 0 (no cap) or more");
            }

            if (model.ContextLength < 0)
            {
                context.Error($"{at}.context_length", "must be 0 (the workers' max_model_len) or more");
            }

            for (var t = 0; t < model.Tenants.Count; t++)
            {
                if (string.IsNullOrWhiteSpace(model.Tenants[t]))
                {
                    context.Error(new KeyPath(at, "tenants", t), "a tenant name must not be empty");
                }
            }

            var capabilities = Capabilities(context, at, model);
            entries[model.Name] = new ModelEntry(model.Name, [.. model.Targets], model.MaxTokens, [.. model.Tenants], capabilities, model.ContextLength) { ResponseCache = model.ResponseCache };
        }

        return (new ModelCatalog(entries.ToFrozenDictionary(StringComparer.Ordinal)), windows.ToFrozenDictionary(StringComparer.Ordinal));
    }

    private static void Targets(ValidationContext context, string at, ModelConfig model, HashSet<string> aliases, HashSet<string> served)
    {
        if (model.Targets.Count > 0 && served.Contains(model.Name))
        {
            context.Error($"{at}.name", $"\"{model.Name}\" is an alias with targets, but a worker serves a model of that name: clients could not tell which they get");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var t = 0; t < model.Targets.Count; t++)
        {
            var target = model.Targets[t];
            var path = new KeyPath(at, "targets", t);
            if (string.IsNullOrWhiteSpace(target))
            {
                context.Error(path, "a target must name a served model");
            }
            else if (aliases.Contains(target) || target == ModelCatalog.Auto)
            {
                // One step from alias to served model: a chain would hide which model serves.
                context.Error(path, $"\"{target}\" is an alias itself; a target must be a served model");
            }
            else if (!seen.Add(target))
            {
                context.Error(path, $"\"{target}\" is listed twice");
            }
        }
    }

    private static ModelCapabilities Capabilities(ValidationContext context, string at, ModelConfig model)
    {
        var capabilities = ModelCapabilities.None;
        for (var c = 0; c < model.Capabilities.Count; c++)
        {
            if (CapabilityNames.TryGetValue(model.Capabilities[c], out var capability))
            {
                capabilities |= capability;
            }
            else
            {
                context.Error(new KeyPath(at, "capabilities", c), $"unknown capability \"{model.Capabilities[c]}\"; use chat, tools, vision, embeddings or transcription");
            }
        }

        if (model.Targets.Count > 0 && (capabilities != ModelCapabilities.None || model.ContextLength > 0))
        {
            context.Error($"{at}.capabilities", "capabilities and context_length belong to a served model's own entry, not to an alias");
        }

        return capabilities;
    }
}
