using System.Collections.Immutable;

namespace AotProxy.Configuration.Validation;

// [[workers]] and [pacing], which sets the defaults of the workers' own rpm and tpm.
internal static class WorkerRules
{
    public static ImmutableArray<WorkerModel> Validate(ValidationContext context, IReadOnlyList<WorkerConfig> workers, PacingConfig pacing)
    {
        context.Unknown("pacing", pacing.Unknown);
        var margin = pacing.SafetyMargin;
        if (margin is < 0 or > 50)
        {
            // 50: read as a percentage of tpm, more would keep most of the paid limit unused.
            context.Error("pacing.safety_margin", $"must be 0 to 50 (got {margin})");
            margin = 2;
        }

        var maxWait = context.Positive("pacing.max_wait", pacing.MaxWait);
        var result = ImmutableArray.CreateBuilder<WorkerModel>(workers.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < workers.Count; i++)
        {
            var worker = workers[i];
            var at = $"workers[{i}]";
            context.Unknown(at, worker.Unknown);
            context.Name($"{at}.name", worker.Name, "worker", names, i, "workers");
            var url = WorkerUrl(context, $"{at}.url", worker.Url);
            var models = ImmutableArray.CreateBuilder<string>();
            if (worker.Models is { } listed)
            {
                for (var m = 0; m < listed.Count; m++)
                {
                    if (string.IsNullOrWhiteSpace(listed[m]))
                    {
                        context.Error($"{at}.models[{m}]", "a model name must not be empty");
                    }
                    else
                    {
                        models.Add(listed[m]);
                    }
                }
            }

            context.AtLeast($"{at}.max_concurrency", worker.MaxConcurrency, 1);
            context.AtLeast($"{at}.weight", worker.Weight, 1);
            context.AtLeast($"{at}.kv_cache_tokens", worker.KvCacheTokens, 0);
            result.Add(new WorkerModel(worker.Name, url, models.ToImmutable(), worker.MaxConcurrency, worker.Weight, worker.ApiKey, Pacing(context, at, worker, margin, maxWait), worker.KvCacheTokens));
        }

        return result.MoveToImmutable();
    }

    // A worker's rpm/tpm with [pacing] applied; null when it has neither (vLLM: nothing to pace).
    private static PacingModel? Pacing(ValidationContext context, string at, WorkerConfig worker, int margin, TimeSpan maxWait)
    {
        context.PerMinute($"{at}.rpm", worker.Rpm);
        context.PerMinute($"{at}.tpm", worker.Tpm);
        if (worker.Rpm > 0 && worker.Rpm <= margin)
        {
            context.Error($"{at}.rpm", $"must be greater than pacing.safety_margin ({margin}), or no request could ever go (got {worker.Rpm})");
        }

        if (worker.PacingMaxWait.Length > 0)
        {
            maxWait = context.Positive($"{at}.pacing_max_wait", worker.PacingMaxWait);
        }

        return worker.Rpm > 0 || worker.Tpm > 0 ? new PacingModel(worker.Rpm, worker.Tpm, margin, maxWait) : null;
    }

    private static Uri WorkerUrl(ValidationContext context, string path, string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url)
            || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            context.Error(path, $"\"{text}\" is not an absolute http:// or https:// URL");
            return new Uri("http://invalid/");
        }

        if (url.Query.Length > 0 || url.Fragment.Length > 0)
        {
            context.Error(path, $"\"{text}\": a base URL has no query or fragment");
        }

        // Always end in "/", so that "v1/chat/completions" resolves under the base path.
        return url.AbsolutePath.EndsWith('/') ? url : new Uri(url.GetLeftPart(UriPartial.Path) + "/");
    }
}
