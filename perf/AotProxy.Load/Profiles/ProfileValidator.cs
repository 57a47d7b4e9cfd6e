using System.Collections.Immutable;
using AotProxy.Configuration;
using AotProxy.Load.Http;

namespace AotProxy.Load.Profiles;

// ProfileConfig -> LoadProfile, collecting every problem with the line of the key it is about.
internal sealed class ProfileValidator
{
    // Far above what one client machine can send; a bigger number is a typo.
    private const double MaxRate = 1_000_000;
    private const int MaxConcurrency = 100_000;
    private const int MaxBurst = 10_000_000;

    // Thousands of distinct long prefixes are no longer "shared": no worker's cache holds them.
    private const int MaxSharedPrefixes = 10_000;

    // Conversations run one turn at a time each; more than this is a typo, not a workload.
    private const int MaxConversations = 100_000;

    private static readonly Dictionary<string, LoadKind> Kinds = new(StringComparer.Ordinal)
    {
        ["inject"] = LoadKind.Inject,
        ["ramp"] = LoadKind.Ramp,
        ["keep_constant"] = LoadKind.KeepConstant,
        ["burst"] = LoadKind.Burst,
    };

    // The keys each kind reads; any other step key written under that kind is an error, because
    // "rate" under keep_constant would otherwise be silently ignored.
    private static readonly Dictionary<LoadKind, string[]> KeysOfKind = new()
    {
        [LoadKind.Inject] = ["kind", "rate", "duration"],
        [LoadKind.Ramp] = ["kind", "from", "to", "duration"],
        [LoadKind.KeepConstant] = ["kind", "concurrency", "duration"],
        [LoadKind.Burst] = ["kind", "count", "window", "duration"],
    };

    private static readonly string[] StepKeys = ["kind", "rate", "from", "to", "concurrency", "count", "window", "duration"];

    private readonly TomlKeyMap _map;
    private readonly List<ProfileError> _errors = [];

    private ProfileValidator(TomlKeyMap map) => _map = map;

    public static ProfileLoadResult Validate(ProfileConfig config, TomlKeyMap map, string name)
    {
        var validator = new ProfileValidator(map);
        var profile = validator.Build(config, name);
        return validator._errors.Count == 0 ? new ProfileLoadResult(profile, []) : new ProfileLoadResult(null, validator._errors);
    }

    private LoadProfile Build(ProfileConfig config, string name)
    {
        Unknown("", config.Unknown);
        var scenario = config.Scenario;
        Unknown("scenario", scenario.Unknown);
        if (!Uri.TryCreate(scenario.Target, UriKind.Absolute, out var target) || (target.Scheme != Uri.UriSchemeHttp && target.Scheme != Uri.UriSchemeHttps))
        {
            Error("scenario.target", $"\"{scenario.Target}\" is not an http:// or https:// URL");
            target = new Uri("http://127.0.0.1:8080");
        }

        if (!scenario.Path.StartsWith('/'))
        {
            Error("scenario.path", "must start with /, e.g. \"/v1/chat/completions\"");
        }

        if (string.IsNullOrWhiteSpace(scenario.Model))
        {
            Error("scenario.model", "must name the model to request");
        }

        var timeout = PositiveDuration("scenario.timeout", scenario.Timeout);
        if (scenario.MaxInFlight is < 1 or > 1_000_000)
        {
            Error("scenario.max_in_flight", "must be from 1 to 1000000");
        }

        var steps = ImmutableArray.CreateBuilder<LoadStep>();
        for (var i = 0; i < config.Load.Count; i++)
        {
            if (Step($"load[{i}]", config.Load[i]) is { } step)
            {
                steps.Add(step);
            }
        }

        if (config.Load.Count == 0)
        {
            Error("", "a profile needs at least one [[load]] step");
        }

        var mix = ImmutableArray.CreateBuilder<MixEntry>();
        var mixNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < config.Mix.Count; i++)
        {
            if (Mix($"mix[{i}]", i, config.Mix[i]) is { } entry)
            {
                if (!mixNames.Add(entry.Name))
                {
                    Error($"mix[{i}].name", $"\"{entry.Name}\" is already used by another [[mix]] entry");
                }

                mix.Add(entry);
            }
        }

        if (config.Mix.Count == 0)
        {
            // No mix: small non-streaming chats, the cheapest request a gateway forwards.
            mix.Add(new MixEntry("default", 1, false, 64, 16, "", ""));
        }

        var thresholds = config.Thresholds;
        Unknown("thresholds", thresholds.Unknown);
        TimeSpan? p99Latency = thresholds.P99Latency.Length == 0 ? null : PositiveDuration("thresholds.p99_latency", thresholds.P99Latency);
        TimeSpan? p99Ttft = thresholds.P99Ttft.Length == 0 ? null : PositiveDuration("thresholds.p99_ttft", thresholds.P99Ttft);
        double? maxErrorRate = null;
        if (_map.Contains("thresholds.max_error_rate"))
        {
            if (thresholds.MaxErrorRate is < 0 or > 1 || double.IsNaN(thresholds.MaxErrorRate))
            {
                Error("thresholds.max_error_rate", "must be a fraction from 0 to 1 (0.01 = 1%)");
            }

            maxErrorRate = thresholds.MaxErrorRate;
        }

        return new LoadProfile(
            name,
            scenario.Name.Length > 0 ? scenario.Name : name,
            scenario.Description,
            target,
            scenario.Path,
            scenario.Model,
            scenario.ApiKey,
            timeout,
            scenario.MaxInFlight,
            steps.ToImmutable(),
            mix.ToImmutable(),
            new Thresholds(p99Latency, p99Ttft, maxErrorRate));
    }

    private LoadStep? Step(string at, LoadStepConfig step)
    {
        Unknown(at, step.Unknown);
        if (!Kinds.TryGetValue(step.Kind, out var kind))
        {
            Error(_map.Contains($"{at}.kind") ? $"{at}.kind" : at, $"kind must be one of {string.Join(", ", Kinds.Keys)}");
            return null;
        }

        var errorsBefore = _errors.Count;
        var applies = KeysOfKind[kind];
        foreach (var key in StepKeys)
        {
            if (_map.Contains($"{at}.{key}") && Array.IndexOf(applies, key) < 0)
            {
                Error($"{at}.{key}", $"is not used by kind = \"{step.Kind}\" (it reads {string.Join(", ", applies.Skip(1))})");
            }
        }

        var duration = TimeSpan.Zero;
        if (kind != LoadKind.Burst || _map.Contains($"{at}.duration"))
        {
            duration = Required(at, "duration") ? PositiveDuration($"{at}.duration", step.Duration) : TimeSpan.Zero;
        }

        LoadStep? result = null;
        switch (kind)
        {
            case LoadKind.Inject:
                if (Required(at, "rate") && Rate($"{at}.rate", step.Rate, allowZero: false))
                {
                    result = LoadStep.Inject(step.Rate, duration);
                }

                break;
            case LoadKind.Ramp:
                var from = Required(at, "from") && Rate($"{at}.from", step.From, allowZero: true);
                var to = Required(at, "to") && Rate($"{at}.to", step.To, allowZero: true);
                if (from && to && step.From == 0 && step.To == 0)
                {
                    Error($"{at}.to", "a ramp from 0 to 0 sends nothing");
                }

                result = LoadStep.Ramp(step.From, step.To, duration);
                break;
            case LoadKind.KeepConstant:
                if (Required(at, "concurrency") && step.Concurrency is < 1 or > MaxConcurrency)
                {
                    Error($"{at}.concurrency", $"must be from 1 to {MaxConcurrency}");
                }

                result = LoadStep.KeepConstant(step.Concurrency, duration);
                break;
            case LoadKind.Burst:
                if (Required(at, "count") && step.Count is < 1 or > MaxBurst)
                {
                    Error($"{at}.count", $"must be from 1 to {MaxBurst}");
                }

                if (!Duration.TryParse(step.Window, out var window))
                {
                    Error($"{at}.window", $"\"{step.Window}\" is not a duration (\"0s\": all at once, \"1s\", \"250ms\")");
                }

                result = LoadStep.Burst(step.Count, window, duration);
                break;
        }

        return _errors.Count == errorsBefore ? result : null;
    }

    private MixEntry? Mix(string at, int index, MixConfig mix)
    {
        Unknown(at, mix.Unknown);
        var errorsBefore = _errors.Count;
        if (mix.Weight is < 1 or > 1000)
        {
            Error($"{at}.weight", "must be from 1 to 1000");
        }

        if (mix.PromptChars is < 1 or > 10_000_000)
        {
            Error($"{at}.prompt_chars", "must be from 1 to 10000000");
        }

        if (mix.MaxTokens < 1)
        {
            Error($"{at}.max_tokens", "must be at least 1");
        }

        var unique = mix.UniquePrompts;
        if (_map.Contains($"{at}.shared_prefixes"))
        {
            if (mix.SharedPrefixes is < 1 or > MaxSharedPrefixes)
            {
                Error($"{at}.shared_prefixes", $"must be from 1 to {MaxSharedPrefixes}");
            }

            if (!_map.Contains($"{at}.prefix_chars"))
            {
                Error(at, "shared_prefixes needs prefix_chars (the length of each shared system message)");
            }
            else if (mix.PrefixChars is < 1 or > 10_000_000)
            {
                Error($"{at}.prefix_chars", "must be from 1 to 10000000");
            }

            if (_map.Contains($"{at}.unique_prompts") && !mix.UniquePrompts)
            {
                Error($"{at}.unique_prompts", "shared_prefixes always sends a unique user message; drop unique_prompts = false");
            }

            unique = true;
        }
        else if (_map.Contains($"{at}.prefix_chars"))
        {
            Error($"{at}.prefix_chars", "is read only with shared_prefixes");
        }

        if (unique && mix.PromptChars < UniqueTag.Length)
        {
            Error($"{at}.prompt_chars", $"must be at least {UniqueTag.Length} with unique prompts (each starts with a {UniqueTag.Length}-character tag)");
        }

        if (_map.Contains($"{at}.models") && (mix.Models.Count == 0 || mix.Models.Any(string.IsNullOrWhiteSpace)))
        {
            Error($"{at}.models", "must list at least one model, none of them empty");
        }

        Conversation(at, mix);

        var start = TimeSpan.Zero;
        if (mix.Start.Length > 0 && !Duration.TryParse(mix.Start, out start))
        {
            Error($"{at}.start", $"\"{mix.Start}\" is not a duration from the schedule's start (\"0s\", \"90s\", \"1m30s\")");
        }

        TimeSpan? stop = null;
        if (mix.Stop.Length > 0)
        {
            stop = PositiveDuration($"{at}.stop", mix.Stop);
            if (stop <= start)
            {
                Error($"{at}.stop", $"must be after start ({mix.Start})");
            }
        }

        var name = mix.Name.Length > 0 ? mix.Name : mix.Tenant.Length > 0 ? mix.Tenant : $"mix-{index}";
        return _errors.Count == errorsBefore
            ? new MixEntry(name, mix.Weight, mix.Stream, mix.PromptChars, mix.MaxTokens, mix.ApiKey, mix.Tenant, unique, mix.SharedPrefixes, mix.PrefixChars, start, stop,
                _map.Contains($"{at}.models") ? [.. mix.Models] : null, mix.Conversations, mix.TurnChars, mix.Turns)
            : null;
    }

    // conversations, turn_chars and turns come together, and replace the keys that shape a
    // one-shot prompt.
    private void Conversation(string at, MixConfig mix)
    {
        string[] keys = ["conversations", "turn_chars", "turns"];
        if (!keys.Any(k => _map.Contains($"{at}.{k}")))
        {
            return;
        }

        foreach (var key in keys.Where(k => !_map.Contains($"{at}.{k}")))
        {
            Error(at, $"multi-turn chats need conversations, turn_chars and turns; {key} is missing");
        }

        foreach (var key in new[] { "prompt_chars", "unique_prompts", "shared_prefixes", "models" }.Where(k => _map.Contains($"{at}.{k}")))
        {
            Error($"{at}.{key}", "is not read with conversations (each turn is turn_chars of new user text after the conversation so far)");
        }

        if (_map.Contains($"{at}.conversations") && mix.Conversations is < 1 or > MaxConversations)
        {
            Error($"{at}.conversations", $"must be from 1 to {MaxConversations}");
        }

        if (_map.Contains($"{at}.turn_chars") && mix.TurnChars is < UniqueTag.Length or > 10_000_000)
        {
            Error($"{at}.turn_chars", $"must be from {UniqueTag.Length} (each turn starts with a {UniqueTag.Length}-character tag) to 10000000");
        }

        if (_map.Contains($"{at}.turns") && mix.Turns is < 1 or > 10_000)
        {
            Error($"{at}.turns", "must be from 1 to 10000");
        }
    }

    private bool Required(string at, string key)
    {
        if (_map.Contains($"{at}.{key}"))
        {
            return true;
        }

        Error(at, $"this kind needs {key}");
        return false;
    }

    private bool Rate(string path, double rate, bool allowZero)
    {
        if (double.IsNaN(rate) || rate < 0 || rate > MaxRate || (!allowZero && rate == 0))
        {
            Error(path, $"must be a rate per second {(allowZero ? "from 0" : "above 0")} up to {MaxRate}");
            return false;
        }

        return true;
    }

    private TimeSpan PositiveDuration(string path, string text)
    {
        if (!Duration.TryParse(text, out var value) || value <= TimeSpan.Zero)
        {
            Error(path, $"\"{text}\" is not a positive duration (\"30s\", \"250ms\", \"10m\")");
            return TimeSpan.FromSeconds(1);
        }

        return value;
    }

    private void Unknown(string table, Dictionary<string, object?>? unknown)
    {
        if (unknown is null)
        {
            return;
        }

        foreach (var key in unknown.Keys)
        {
            var path = table.Length == 0 ? key : $"{table}.{key}";
            Error(path, table.Length == 0 ? "unknown key at the top level" : $"unknown key in {Label(table)}");
        }
    }

    // "load[1]" reads as "[[load]] #2", the way a person counts sections in the file.
    private static string Label(string table)
    {
        var open = table.IndexOf('[', StringComparison.Ordinal);
        if (open < 0)
        {
            return $"[{table}]";
        }

        var index = int.Parse(table.AsSpan(open + 1, table.Length - open - 2), System.Globalization.CultureInfo.InvariantCulture);
        return $"[[{table[..open]}]] #{index + 1}";
    }

    private void Error(string path, string message) => _errors.Add(new ProfileError(_map.LineOf(path), path, message));
}
