using AotProxy.Load.Profiles;

namespace AotProxy.Load.Tests.Profiles;

public sealed class ProfileLoaderTests
{
    private const string Minimal = """
        [scenario]
        name = "t"

        [[load]]
        kind = "inject"
        rate = 10
        duration = "1s"
        """;

    public static TheoryData<string> ShippedProfiles() => new(ProfileFiles());

    private static string[] ProfileFiles() =>
        [.. Directory.GetFiles(Path.Combine(Fixtures.RepoRoot, "perf", "profiles"), "*.toml").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];

    [Fact]
    public void The_six_documented_profiles_are_shipped()
    {
        var names = ProfileFiles().ToHashSet(StringComparer.Ordinal);
        foreach (var name in new[] { "smoke.toml", "throughput-nonstream.toml", "stream-chat.toml", "burst-1000.toml", "sustained.toml", "mixed-tenants.toml" })
        {
            Assert.Contains(name, names);
        }
    }

    [Theory]
    [MemberData(nameof(ShippedProfiles))]
    public void Every_shipped_profile_parses(string file)
    {
        var result = ProfileLoader.LoadFile(Path.Combine(Fixtures.RepoRoot, "perf", "profiles", file));
        Assert.True(result.Profile is not null, string.Join("\n", result.Errors));
        Assert.Equal(Path.GetFileNameWithoutExtension(file), result.Profile.Name);
        Assert.NotEmpty(result.Profile.Steps);
        Assert.NotEmpty(result.Profile.Mix);
    }

    [Fact]
    public void Shipped_profiles_say_what_the_brief_asks_of_them()
    {
        var burst = Load("burst-1000.toml");
        Assert.Equal(LoadKind.Burst, burst.Steps[0].Kind);
        Assert.Equal(1000, burst.Steps[0].Count);
        Assert.Equal(TimeSpan.FromSeconds(1), burst.Steps[0].Window);

        var sustained = Load("sustained.toml");
        Assert.Equal(LoadStep.Inject(100, TimeSpan.FromMinutes(10)), sustained.Steps.Single());

        var stream = Load("stream-chat.toml");
        Assert.Equal(256, stream.Steps.Single().Concurrency);
        Assert.All(stream.Mix, m => Assert.True(m.Stream));

        var tenants = Load("mixed-tenants.toml");
        Assert.Equal([70, 20, 10], tenants.Mix.Select(m => m.Weight));
        Assert.Equal(["sk-load-enterprise", "sk-load-premium", "sk-load-free"], tenants.Mix.Select(m => m.ApiKey));

        var smoke = Load("smoke.toml");
        Assert.Contains(smoke.Mix, m => m.Stream);
        Assert.Contains(smoke.Mix, m => !m.Stream);
    }

    [Fact]
    public void The_routing_profiles_send_the_same_request_size_at_80_and_90_percent_of_the_fleet()
    {
        var shared = Load("routing-shared-prefix.toml");
        var noReuse = Load("routing-no-reuse.toml");
        var load90 = Load("routing-load-90.toml");

        var sharedMix = shared.Mix.Single();
        Assert.Equal((16, 8000, true), (sharedMix.SharedPrefixes, sharedMix.PrefixChars, sharedMix.Stream));
        Assert.All(noReuse.Mix.Concat(load90.Mix), m => Assert.True(m.UniquePrompts && m.SharedPrefixes == 0 && m.Stream));
        // The same prompt length either way (system + user there, one user message here), so the
        // fleet's capacity without cache hits is the same for all three: ~16.2 req/s.
        Assert.All(noReuse.Mix.Concat(load90.Mix), m => Assert.Equal(sharedMix.PrefixChars + sharedMix.PromptChars, m.PromptChars));
        Assert.Equal(LoadStep.Inject(13, TimeSpan.FromSeconds(30)), shared.Steps.Single());
        Assert.Equal(shared.Steps.ToArray(), noReuse.Steps.ToArray());
        Assert.Equal(14.6, load90.Steps[^1].RateFrom);
        Assert.Equal(0.01, load90.Thresholds.MaxErrorRate);
    }

    [Fact]
    public void The_issue_19_routing_profiles_send_what_the_issue_measures()
    {
        var pressure = Load("routing-cache-pressure.toml");
        var mix = pressure.Mix.Single();
        Assert.Equal((16, 6000, 400, true), (mix.SharedPrefixes, mix.PrefixChars, mix.PromptChars, mix.Stream));
        Assert.Equal(LoadStep.Inject(13.4, TimeSpan.FromSeconds(60)), pressure.Steps.Single());

        var chat = Load("routing-multi-turn.toml").Mix.Single();
        Assert.Equal((64, 800, true), (chat.Conversations, chat.TurnChars, chat.Stream));

        var pushBack = Load("routing-push-back.toml");
        Assert.All(pushBack.Steps, s => Assert.Equal(LoadStep.Burst(24, TimeSpan.Zero, TimeSpan.FromSeconds(4)), s));
        Assert.Equal(6, pushBack.Steps.Length);

        var lora = Load("routing-lora.toml").Mix.Single();
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"lora-{i}"), lora.Models!);
        Assert.True(lora.UniquePrompts);
    }

    [Fact]
    public void A_full_profile_binds_every_key()
    {
        var result = ProfileLoader.Parse("""
            [scenario]
            name = "full"
            description = "d"
            target = "http://127.0.0.1:9999"
            path = "/v1/completions"
            model = "m"
            api_key = "k"
            timeout = "5s"
            max_in_flight = 7

            [[load]]
            kind = "ramp"
            from = 0
            to = 2.5
            duration = "1m30s"

            [[load]]
            kind = "burst"
            count = 3
            window = "250ms"

            [[load]]
            kind = "keep_constant"
            concurrency = 2
            duration = "2s"

            [[mix]]
            name = "a"
            weight = 3
            stream = true
            prompt_chars = 10
            max_tokens = 5
            api_key = "ka"
            tenant = "ta"

            [thresholds]
            p99_latency = "1s"
            p99_ttft = "500ms"
            max_error_rate = 0
            """, "full", "test");
        var profile = Assert.IsType<LoadProfile>(result.Profile);
        Assert.Equal(new Uri("http://127.0.0.1:9999"), profile.Target);
        Assert.Equal("/v1/completions", profile.Path);
        Assert.Equal(TimeSpan.FromSeconds(5), profile.Timeout);
        Assert.Equal(7, profile.MaxInFlight);
        Assert.Equal(LoadStep.Ramp(0, 2.5, TimeSpan.FromSeconds(90)), profile.Steps[0]);
        Assert.Equal(LoadStep.Burst(3, TimeSpan.FromMilliseconds(250), TimeSpan.Zero), profile.Steps[1]);
        Assert.Equal(TimeSpan.FromMilliseconds(250), profile.Steps[1].Duration);
        Assert.Equal(LoadStep.KeepConstant(2, TimeSpan.FromSeconds(2)), profile.Steps[2]);
        Assert.Equal(new MixEntry("a", 3, true, 10, 5, "ka", "ta"), profile.Mix.Single());
        Assert.Equal(new Thresholds(TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), 0), profile.Thresholds);
    }

    [Fact]
    public void Shared_prefix_keys_bind_and_imply_unique_user_messages()
    {
        var profile = Assert.IsType<LoadProfile>(ProfileLoader.Parse(Minimal + """


            [[mix]]
            name = "shared"
            shared_prefixes = 16
            prefix_chars = 8000
            prompt_chars = 400

            [[mix]]
            name = "unique"
            unique_prompts = true
            prompt_chars = 8400
            """, "t", "test").Profile);

        Assert.Equal(new MixEntry("shared", 1, false, 400, 16, "", "", UniquePrompts: true, SharedPrefixes: 16, PrefixChars: 8000), profile.Mix[0]);
        Assert.Equal(new MixEntry("unique", 1, false, 8400, 16, "", "", UniquePrompts: true), profile.Mix[1]);
    }

    // line: 0 for the [[mix]] header, else the how-manieth of the keys.
    [Theory]
    [InlineData("shared_prefixes = 4\nprompt_chars = 100", 0, "mix[0]", "needs prefix_chars")]
    [InlineData("prefix_chars = 100", 1, "mix[0].prefix_chars", "only with shared_prefixes")]
    [InlineData("shared_prefixes = 0\nprefix_chars = 100", 1, "mix[0].shared_prefixes", "from 1 to 10000")]
    [InlineData("shared_prefixes = 20000\nprefix_chars = 100", 1, "mix[0].shared_prefixes", "from 1 to 10000")]
    [InlineData("shared_prefixes = 4\nprefix_chars = 0", 2, "mix[0].prefix_chars", "from 1 to 10000000")]
    [InlineData("shared_prefixes = 4\nprefix_chars = 100\nunique_prompts = false", 3, "mix[0].unique_prompts", "always sends a unique user message")]
    [InlineData("unique_prompts = true\nprompt_chars = 10", 2, "mix[0].prompt_chars", "at least 18")]
    [InlineData("shared_prefix = 4", 1, "mix[0].shared_prefix", "unknown key in [[mix]] #1")]
    [InlineData("conversations = 4\nturn_chars = 100", 0, "mix[0]", "turns is missing")]
    [InlineData("conversations = 4\nturns = 4", 0, "mix[0]", "turn_chars is missing")]
    [InlineData("conversations = 0\nturn_chars = 100\nturns = 2", 1, "mix[0].conversations", "from 1 to 100000")]
    [InlineData("conversations = 2\nturn_chars = 10\nturns = 2", 2, "mix[0].turn_chars", "from 18")]
    [InlineData("conversations = 2\nturn_chars = 100\nturns = 0", 3, "mix[0].turns", "from 1 to 10000")]
    [InlineData("conversations = 2\nturn_chars = 100\nturns = 2\nprompt_chars = 50", 4, "mix[0].prompt_chars", "is not read with conversations")]
    [InlineData("conversations = 2\nturn_chars = 100\nturns = 2\nshared_prefixes = 2\nprefix_chars = 50", 4, "mix[0].shared_prefixes", "is not read with conversations")]
    [InlineData("models = []", 1, "mix[0].models", "at least one model")]
    [InlineData("models = [\"a\", \"\"]", 1, "mix[0].models", "none of them empty")]
    public void Bad_mix_settings_are_errors_with_their_line(string keys, int line, string key, string message)
    {
        var header = Minimal.Split('\n').Length + 2;

        var error = Assert.Single(Errors(Minimal + "\n\n[[mix]]\n" + keys + "\n"), e => e.Key == key);

        Assert.Equal(header + line, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Conversation_and_model_keys_bind()
    {
        var profile = Assert.IsType<LoadProfile>(ProfileLoader.Parse(Minimal + """


            [[mix]]
            name = "chat"
            stream = true
            conversations = 64
            turn_chars = 800
            turns = 6

            [[mix]]
            name = "lora"
            unique_prompts = true
            prompt_chars = 400
            models = ["lora-0", "lora-1"]
            """, "t", "test").Profile);

        Assert.Equal((64, 800, 6), (profile.Mix[0].Conversations, profile.Mix[0].TurnChars, profile.Mix[0].Turns));
        Assert.Null(profile.Mix[0].Models);
        Assert.Equal(["lora-0", "lora-1"], profile.Mix[1].Models!);
        Assert.Equal(0, profile.Mix[1].Conversations);
    }

    [Theory]
    [InlineData("start = \"soon\"", 1, "mix[0].start", "is not a duration")]
    [InlineData("stop = \"0s\"", 1, "mix[0].stop", "not a positive duration")]
    [InlineData("start = \"30s\"\nstop = \"20s\"", 2, "mix[0].stop", "must be after start (30s)")]
    public void Bad_mix_start_and_stop_are_errors_with_their_line(string keys, int line, string key, string message)
    {
        var header = Minimal.Split('\n').Length + 2;

        var error = Assert.Single(Errors(Minimal + "\n\n[[mix]]\n" + keys + "\n"), e => e.Key == key);

        Assert.Equal(header + line, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mix_start_and_stop_bind()
    {
        var result = ProfileLoader.Parse(Minimal + "\n\n[[mix]]\nname = \"a\"\nstop = \"1m30s\"\n\n[[mix]]\nname = \"b\"\nstart = \"10s\"\n", "t", "test");
        var profile = Assert.IsType<LoadProfile>(result.Profile);

        Assert.Equal((TimeSpan.Zero, TimeSpan.FromSeconds(90)), (profile.Mix[0].Start, profile.Mix[0].Stop));
        Assert.Equal((TimeSpan.FromSeconds(10), (TimeSpan?)null), (profile.Mix[1].Start, profile.Mix[1].Stop));
    }

    [Fact]
    public void An_unknown_key_is_an_error_with_its_line()
    {
        var errors = Errors(Minimal + """


            [[load]]
            kind = "inject"
            rate = 10
            duraton = "1s"
            """);
        var error = Assert.Single(errors, e => e.Key == "load[1].duraton");
        Assert.Equal(12, error.Line);
        Assert.Contains("unknown key in [[load]] #2", error.Message, StringComparison.Ordinal);
        Assert.Contains("line 12: load[1].duraton", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[scenario]\nname = \"x\"\nnmae = \"x\"", 3, "scenario.nmae")]
    [InlineData("[thresholds]\np99 = \"1s\"", 2, "thresholds.p99")]
    [InlineData("[[mix]]\nstreem = true", 2, "mix[0].streem")]
    [InlineData("rate = 5", 1, "rate")]
    public void Unknown_keys_anywhere_are_errors_with_their_line(string prefix, int line, string key)
    {
        // The prefix comes first, so a top-level key stays top-level.
        var toml = prefix + "\n\n[[load]]\nkind = \"inject\"\nrate = 10\nduration = \"1s\"\n";
        var error = Assert.Single(Errors(toml), e => e.Key == key);
        Assert.Equal(line, error.Line);
    }

    [Fact]
    public void A_key_that_its_kind_does_not_read_is_an_error()
    {
        var error = Assert.Single(Errors("""
            [[load]]
            kind = "keep_constant"
            concurrency = 4
            rate = 100
            duration = "1s"
            """));
        Assert.Equal((4, "load[0].rate"), (error.Line, error.Key));
    }

    [Fact]
    public void A_wrong_type_is_an_error_with_its_line()
    {
        var error = Assert.Single(Errors("""
            [[load]]
            kind = "inject"
            rate = "fast"
            duration = "1s"
            """));
        Assert.Equal(3, error.Line);
        Assert.Equal("load[0].rate", error.Key);
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var errors = Errors("""
            [scenario]
            target = "ftp://x"
            timeout = "soon"

            [[load]]
            kind = "inject"

            [[load]]
            kind = "wave"

            [[mix]]
            weight = 0
            """);
        Assert.Contains(errors, e => e.Key == "scenario.target" && e.Line == 2);
        Assert.Contains(errors, e => e.Key == "scenario.timeout" && e.Line == 3);
        Assert.Contains(errors, e => e.Key == "load[0]" && e.Line == 5 && e.Message.Contains("rate", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Key == "load[0]" && e.Line == 5 && e.Message.Contains("duration", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Key == "load[1].kind" && e.Line == 9);
        Assert.Contains(errors, e => e.Key == "mix[0].weight" && e.Line == 12);
    }

    [Fact]
    public void Sections_may_be_interleaved_despite_tomlyns_reopened_table_bug()
    {
        var result = ProfileLoader.Parse("""
            [[load]]
            kind = "inject"
            rate = 1
            duration = "1s"

            [[mix]]
            name = "a"

            [[load]]
            kind = "inject"
            rate = 2
            duration = "1s"

            [[mix]]
            name = "b"
            nope = 1
            """, "x", "test");
        var error = Assert.Single(result.Errors);
        Assert.Equal((16, "mix[1].nope"), (error.Line, error.Key));
    }

    [Fact]
    public void A_syntax_error_names_its_line()
    {
        var error = Assert.Single(Errors(Minimal + "\n[[load]\n"));
        Assert.Equal(Minimal.Split('\n').Length + 1, error.Line);
    }

    [Fact]
    public void No_load_step_is_an_error()
    {
        Assert.Contains(Errors("[scenario]\nname = \"x\"\n"), e => e.Message.Contains("[[load]]", StringComparison.Ordinal));
    }

    private static LoadProfile Load(string file)
    {
        var result = ProfileLoader.LoadFile(Path.Combine(Fixtures.RepoRoot, "perf", "profiles", file));
        return result.Profile ?? throw new InvalidOperationException(string.Join("\n", result.Errors));
    }

    private static IReadOnlyList<ProfileError> Errors(string toml)
    {
        var result = ProfileLoader.Parse(toml, "t", "test");
        Assert.Null(result.Profile);
        return result.Errors;
    }
}
