using System.Text.Json;
using AotProxy.Load.Http;
using AotProxy.Load.Profiles;

namespace AotProxy.Load.Tests.Http;

public sealed class RequestTemplateTests
{
    private const string Shared = """
        [[load]]
        kind = "inject"
        rate = 1
        duration = "1s"

        [[mix]]
        name = "shared"
        shared_prefixes = 16
        prefix_chars = 8000
        prompt_chars = 400
        max_tokens = 32
        stream = true
        """;

    [Fact]
    public void A_plain_entry_sends_the_same_body_every_time()
    {
        var template = Template("[[load]]\nkind = \"inject\"\nrate = 1\nduration = \"1s\"\n\n[[mix]]\nprompt_chars = 100\n");

        Assert.Same(template.NextBody(), template.NextBody());
        var (system, user) = Messages(template.NextBody());
        Assert.Null(system);
        Assert.Equal(RequestTemplate.Prompt(100), user);
    }

    [Fact]
    public void Shared_prefix_bodies_carry_one_of_the_system_messages_and_a_unique_user_message()
    {
        var template = Template(Shared);
        const int Requests = 1600;

        var bodies = Enumerable.Range(0, Requests).Select(_ => Messages(template.NextBody())).ToArray();

        Assert.All(bodies, b => Assert.Equal((8000, 400), (b.System!.Length, b.User.Length)));
        var bySystem = bodies.GroupBy(b => b.System!, StringComparer.Ordinal).ToArray();
        Assert.Equal(16, bySystem.Length);
        // Uniform: 100 each on average; the sequence is fixed (seeded by the entry's name), so
        // this is exact, not a flaky statistical bound.
        Assert.All(bySystem, g => Assert.InRange(g.Count(), 60, 140));
        Assert.Equal(16, bySystem.Select(g => g.Key[0]).Distinct().Count());
        Assert.Equal(Requests, bodies.Select(b => b.User).Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(Requests, bodies.Select(b => b.User[..UniqueTag.Length]).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Every_run_sends_the_same_prefix_sequence_but_its_own_user_messages()
    {
        var first = Template(Shared);
        var second = Template(Shared);

        var a = Enumerable.Range(0, 200).Select(_ => Messages(first.NextBody())).ToArray();
        var b = Enumerable.Range(0, 200).Select(_ => Messages(second.NextBody())).ToArray();

        Assert.Equal(a.Select(m => m.System), b.Select(m => m.System));
        Assert.Empty(a.Select(m => m.User).Intersect(b.Select(m => m.User), StringComparer.Ordinal));
    }

    [Fact]
    public void Unique_prompts_alone_send_one_unique_user_message_of_prompt_chars()
    {
        var template = Template("[[load]]\nkind = \"inject\"\nrate = 1\nduration = \"1s\"\n\n[[mix]]\nunique_prompts = true\nprompt_chars = 500\n");

        var bodies = Enumerable.Range(0, 50).Select(_ => Messages(template.NextBody())).ToArray();

        Assert.All(bodies, b => Assert.Null(b.System));
        Assert.All(bodies, b => Assert.Equal(500, b.User.Length));
        Assert.Equal(50, bodies.Select(b => b.User).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Bodies_from_many_threads_are_all_valid_and_all_different()
    {
        var template = Template(Shared);
        var users = new string[2000];

        Parallel.For(0, users.Length, i => users[i] = Messages(template.NextBody()).User);

        Assert.Equal(users.Length, users.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Completions_put_the_shared_text_first_in_the_prompt()
    {
        var template = Template("[scenario]\npath = \"/v1/completions\"\n\n" + Shared);

        using var json = JsonDocument.Parse(template.NextBody());
        var prompt = json.RootElement.GetProperty("prompt").GetString()!;

        Assert.Equal(8000 + 2 + 400, prompt.Length);
        Assert.Equal(SharedPrefix.Text(template.PrefixOf(0), 8000) + "\n\n", prompt[..8002]);
    }

    [Fact]
    public void Shared_texts_differ_from_their_first_character_and_have_the_asked_length()
    {
        var texts = Enumerable.Range(0, 16).Select(i => SharedPrefix.Text(i, 300)).ToArray();

        Assert.All(texts, t => Assert.Equal(300, t.Length));
        Assert.Equal(16, texts.Select(t => t[0]).Distinct().Count());
        Assert.Equal(texts, Enumerable.Range(0, 16).Select(i => SharedPrefix.Text(i, 300)));
        Assert.Equal(1000, Enumerable.Range(0, 1000).Select(i => SharedPrefix.Text(i, 8)[..4]).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Models_are_drawn_from_the_list_by_its_counts_the_same_in_every_run()
    {
        const string Toml = "[[load]]\nkind = \"inject\"\nrate = 1\nduration = \"1s\"\n\n[[mix]]\nname = \"lora\"\nunique_prompts = true\nprompt_chars = 100\nmodels = [\"a\", \"b\", \"c\", \"a\"]\n";
        var first = Template(Toml);
        var second = Template(Toml);

        var models = Enumerable.Range(0, 4000).Select(_ => Model(first.NextBody())).ToArray();

        Assert.Equal(models, Enumerable.Range(0, 4000).Select(_ => Model(second.NextBody())));
        var counts = models.GroupBy(m => m, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        Assert.Equal(["a", "b", "c"], counts.Keys.Order(StringComparer.Ordinal));
        Assert.InRange(counts["a"], 1800, 2200); // "a" is listed twice: half the requests
        Assert.InRange(counts["b"], 850, 1150);
        Assert.InRange(counts["c"], 850, 1150);
    }

    [Fact]
    public void Models_and_shared_prefixes_vary_independently()
    {
        var template = Template(Shared + "\nmodels = [\"x\", \"y\", \"z\"]\n");

        var pairs = Enumerable.Range(0, 3000).Select(_ => template.NextBody()).Select(b => (Model(b), Messages(b).System![..4])).ToArray();

        Assert.Equal(48, pairs.Distinct().Count());
    }

    [Fact]
    public void A_plain_entry_with_models_sends_one_fixed_body_per_model()
    {
        var template = Template("[[load]]\nkind = \"inject\"\nrate = 1\nduration = \"1s\"\n\n[[mix]]\nprompt_chars = 50\nmodels = [\"p\", \"q\"]\n");

        var bodies = Enumerable.Range(0, 200).Select(_ => template.NextBody()).ToArray();

        Assert.Equal(2, bodies.Distinct().Count()); // the same two arrays, reused
        Assert.Equal(["p", "q"], bodies.Select(Model).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        Assert.All(bodies, b => Assert.Equal(RequestTemplate.Prompt(50), Messages(b).User));
    }

    [Fact]
    public void Every_conversation_takes_one_turn_per_round_in_an_order_that_changes_but_is_the_same_in_every_run()
    {
        const string Toml = "[[load]]\nkind = \"inject\"\nrate = 1\nduration = \"1s\"\n\n[[mix]]\nname = \"chat\"\nconversations = 64\nturn_chars = 100\nturns = 8\n";
        var first = Template(Toml);
        var second = Template(Toml);
        Assert.Equal(64, first.Conversations);

        var picks = Enumerable.Range(0, 64 * 20).Select(_ => first.NextConversation()).ToArray();
        var again = Enumerable.Range(0, 64 * 20).Select(_ => second.NextConversation()).ToArray();

        Assert.All(picks.Chunk(64), round => Assert.Equal(64, round.Distinct().Count()));
        Assert.Equal(picks.Select(c => c.Id[c.Id.IndexOf('-', StringComparison.Ordinal)..]), again.Select(c => c.Id[c.Id.IndexOf('-', StringComparison.Ordinal)..]));
        // Round robin over 4 workers sends turn n to worker n mod 4: no conversation may keep one
        // such slot in every round.
        Assert.All(picks.Distinct(), c => Assert.True(
            Enumerable.Range(0, picks.Length).Where(n => picks[n] == c).Select(n => n % 4).Distinct().Count() > 1,
            $"{c.Id} always at the same position mod 4"));
    }

    private static string Model(byte[] body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("model").GetString()!;
    }

    private static RequestTemplate Template(string toml)
    {
        var result = ProfileLoader.Parse(toml, "t", "test");
        var profile = result.Profile ?? throw new InvalidOperationException(string.Join("\n", result.Errors));
        return RequestTemplate.Create(profile, profile.Mix.Single(), null);
    }

    private static (string? System, string User) Messages(byte[] body)
    {
        using var json = JsonDocument.Parse(body);
        string? system = null;
        var user = "";
        foreach (var message in json.RootElement.GetProperty("messages").EnumerateArray())
        {
            var content = message.GetProperty("content").GetString()!;
            switch (message.GetProperty("role").GetString())
            {
                case "system":
                    Assert.Equal("", user); // the system message comes first: it is the shared prefix
                    system = content;
                    break;
                case "user":
                    user = content;
                    break;
            }
        }

        return (system, user);
    }
}
