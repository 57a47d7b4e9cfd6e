using System.Text.Json;
using AotProxy.Load.Profiles;
using AotProxy.Load.Scheduling;
using AotProxy.Load.Tests.Support;

namespace AotProxy.Load.Tests.Scheduling;

// Multi-turn chats through the real runner and a loopback server: every turn carries the
// conversation so far with the answers the server streamed, its conversation's x-session-id, and
// waits for the turn before it.
public sealed class ConversationTests
{
    private const int TurnChars = 120;

    [Fact]
    public async Task Each_turn_sends_the_conversation_so_far_with_the_streamed_answers_one_turn_at_a_time()
    {
        // 3 conversations get a turn every 100 ms each (30/s) while the server takes 150 ms per
        // answer, so most turns find the one before them still out. Arrival 6 is refused (429):
        // that turn's user message must not enter its conversation.
        await using var server = await StubServer.StartAsync(_ => TimeSpan.FromMilliseconds(150), arrival => arrival == 6 ? 429 : 200);
        var result = await RunAsync(server, conversations: 3, turns: 2, rate: 30, duration: "600ms");

        var turns = server.Requests.Where(r => r.Session is not null).OrderBy(r => r.Arrival).ToArray();
        Assert.Equal(18, result.Total.Requests);
        Assert.Equal(18, turns.Length);
        Assert.Equal(17, result.Total.Ok);
        Assert.Equal(1, server.MaxInFlightPerSession);

        var users = new HashSet<string>(StringComparer.Ordinal);
        var restarted = 0;
        foreach (var session in turns.GroupBy(t => t.Session!, StringComparer.Ordinal))
        {
            var history = new List<(string Role, string Content)>();
            var answered = 0;
            foreach (var (arrival, _, body) in session)
            {
                var messages = Messages(body);
                Assert.Equal(history, messages[..^1]);
                var (role, user) = messages[^1];
                Assert.Equal(("user", TurnChars), (role, user.Length));
                Assert.True(users.Add(user), "every user message is new");
                if (arrival != 6)
                {
                    history.Add(("user", user));
                    history.Add(("assistant", $"answer {arrival}"));
                    answered++;
                }
            }

            // After 2 answered turns the conversation starts over under a new id.
            Assert.InRange(answered, 1, 2);
            restarted += answered == 2 ? 1 : 0;
        }

        Assert.True(restarted >= 6, $"{restarted} conversations reached their last turn");
        Assert.Equal(3, turns.Select(t => t.Session![..t.Session!.LastIndexOf('-')]).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task A_closed_loop_step_takes_turns_too()
    {
        await using var server = await StubServer.StartAsync(_ => TimeSpan.FromMilliseconds(20));
        var profile = Profile(server, 2, 3, """
            [[load]]
            kind = "keep_constant"
            concurrency = 4
            duration = "2s"
            """);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var result = await new LoadRunner(profile, new RunOptions()).RunAsync(timeout.Token);

        Assert.True(result.Total.Ok >= 6, $"{result.Total.Ok} turns of {result.Total.Requests}: {string.Join(", ", result.Total.Errors())}; arrivals {server.Arrivals}");
        Assert.Equal(result.Total.Requests, result.Total.Ok);
        Assert.Equal(1, server.MaxInFlightPerSession);
        var sessions = server.Requests.Where(r => r.Session is not null).GroupBy(r => r.Session!, StringComparer.Ordinal).ToArray();
        Assert.All(sessions, s => Assert.InRange(s.Count(), 1, 3));
        Assert.All(sessions, s => Assert.Equal(Enumerable.Range(0, s.Count()).Select(i => (2 * i) + 1), s.OrderBy(r => r.Arrival).Select(r => Messages(r.Body).Length)));
    }

    private static async Task<RunResult> RunAsync(StubServer server, int conversations, int turns, int rate, string duration)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var profile = Profile(server, conversations, turns, $"""
            [[load]]
            kind = "inject"
            rate = {rate}
            duration = "{duration}"
            """);
        return await new LoadRunner(profile, new RunOptions()).RunAsync(timeout.Token);
    }

    private static LoadProfile Profile(StubServer server, int conversations, int turns, string load)
    {
        var loaded = ProfileLoader.Parse($"""
            [scenario]
            name = "chat"
            target = "{server.BaseUri}"
            timeout = "10s"

            {load}

            [[mix]]
            name = "chat"
            stream = true
            conversations = {conversations}
            turn_chars = {TurnChars}
            turns = {turns}
            max_tokens = 8
            """, "chat", "test");
        return loaded.Profile ?? throw new InvalidOperationException(string.Join("\n", loaded.Errors));
    }

    private static (string Role, string Content)[] Messages(string body)
    {
        using var json = JsonDocument.Parse(body);
        return [.. json.RootElement.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!))];
    }
}
