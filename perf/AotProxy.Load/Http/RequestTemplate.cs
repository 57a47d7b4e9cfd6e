using System.Text;
using System.Text.Json;
using AotProxy.Load.Profiles;

namespace AotProxy.Load.Http;

// The bytes of one [[mix]] entry's requests, built once. A plain entry sends the same body every
// time, so the runner spends no time on JSON while the schedule runs. With unique prompts or
// shared prefixes, each body is three pre-built pieces around the request's own tag: the head (up
// to the user message, with one of the shared system messages and the request's model), the tag
// plus filler, the tail. A multi-turn entry's turns are written whole (NextTurn), since each
// carries its conversation so far; its NextBody is a one-turn chat (the runner's warm-up).
internal sealed class RequestTemplate
{
    // The header that names a multi-turn request's conversation (issue 19: the gateway's
    // session affinity reads it).
    public const string SessionHeader = "x-session-id";

    // English-like text: about 4 characters per token, as the gateway estimates prompt size.
    private const string Filler = "The quick brown fox jumps over the lazy dog while the load runner counts tokens. ";

    // Salt for the model sequence, so that it is not the prefix sequence.
    private const ulong ModelStream = 0x6D6F64656C73UL; // "models"

    // Written where the unique user message goes, then cut out: a control character is always
    // escaped as \u0001, and no prompt text contains one.
    private const string Marker = "\u0001";
    private static readonly byte[] MarkerJson = "\\u0001"u8.ToArray();

    private readonly MixEntry _mix;
    private readonly bool _completions;
    private readonly string[] _models;
    private readonly byte[][]? _fixedBodies; // one per model
    private readonly byte[][] _heads = [];   // [prefix * models + model]
    private readonly byte[] _filler = [];
    private readonly byte[] _tail = [];
    private readonly string _turnFiller = "";
    private readonly Conversation[] _conversations = [];
    private readonly uint _run;
    private readonly ulong _seed;
    private readonly int[] _order = []; // this round's order of the conversations
    private readonly Lock _turnLock = new();
    private long _next = -1;
    private long _turns = -1;

    private RequestTemplate(LoadProfile profile, MixEntry mix, string authorization)
    {
        Authorization = authorization;
        Stream = mix.Stream;
        SharedPrefixes = mix.SharedPrefixes;
        _mix = mix;
        _models = mix.Models is { Count: > 0 } models ? [.. models] : [profile.Model];

        // /v1/completions takes "prompt"; /v1/chat/completions (and anything else) "messages".
        _completions = profile.Path.EndsWith("/completions", StringComparison.Ordinal) && !profile.Path.EndsWith("/chat/completions", StringComparison.Ordinal);
        _seed = SplitMix64.Seed(mix.Name);
        var userChars = mix.Conversations > 0 ? mix.TurnChars : mix.PromptChars;
        if (!mix.UniquePrompts && mix.SharedPrefixes == 0 && mix.Conversations == 0)
        {
            _fixedBodies = [.. _models.Select(model => BuildBody(model, [("user", Prompt(userChars))]))];
            return;
        }

        // Every prefix text and model ends up in a head; the tail is the same for all of them.
        var prefixes = Math.Max(1, mix.SharedPrefixes);
        _heads = new byte[prefixes * _models.Length][];
        for (var i = 0; i < prefixes; i++)
        {
            for (var m = 0; m < _models.Length; m++)
            {
                (string, string)[] messages = mix.SharedPrefixes > 0 ? [("system", SharedPrefix.Text(i, mix.PrefixChars)), ("user", Marker)] : [("user", Marker)];
                var body = BuildBody(_models[m], messages);
                var at = body.AsSpan().IndexOf(MarkerJson);
                _heads[(i * _models.Length) + m] = body[..at];
                _tail = body[(at + MarkerJson.Length)..];
            }
        }

        _turnFiller = Prompt(userChars - UniqueTag.Length);
        _filler = Encoding.ASCII.GetBytes(_turnFiller);
        _run = (uint)Random.Shared.NextInt64(1L << 32);
        _conversations = [.. Enumerable.Range(0, mix.Conversations).Select(i => new Conversation(_run, i, mix.Turns))];
        _order = [.. Enumerable.Range(0, mix.Conversations)];
    }

    // "" when no key applies: the request goes without Authorization.
    public string Authorization { get; }

    public bool Stream { get; }

    public int SharedPrefixes { get; }

    // > 0: a multi-turn entry; the runner sends NextTurn of NextConversation.
    public int Conversations => _conversations.Length;

    public static RequestTemplate Create(LoadProfile profile, MixEntry mix, string? keyOverride)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(mix);

        // The entry's own key wins (mixed-tenants sends three tenants' keys); then --key; then
        // the scenario's.
        var key = mix.ApiKey.Length > 0 ? mix.ApiKey : !string.IsNullOrEmpty(keyOverride) ? keyOverride : profile.ApiKey;
        return new RequestTemplate(profile, mix, key.Length > 0 ? $"Bearer {key}" : "");
    }

    public static string Prompt(int chars)
    {
        var text = new StringBuilder(chars + Filler.Length);
        while (text.Length < chars)
        {
            text.Append(Filler);
        }

        return text.ToString(0, chars);
    }

    // Which shared system message request number `request` of this entry carries: uniform, and the
    // same sequence in every run, so that every routing strategy sees the same traffic.
    public int PrefixOf(long request) =>
        SharedPrefixes == 0 ? 0 : (int)(SplitMix64.Mix(_seed + (ulong)request) % (ulong)SharedPrefixes);

    // Which of the entry's models request number `request` names: uniform over the list, the same
    // sequence in every run (a stream apart from PrefixOf's, so the two do not move together).
    public int ModelOf(long request) =>
        _models.Length == 1 ? 0 : (int)(SplitMix64.Mix(SplitMix64.Mix(_seed ^ ModelStream) + (ulong)request) % (ulong)_models.Length);

    // Safe from any thread: each call takes the next request number.
    public byte[] NextBody()
    {
        var request = Interlocked.Increment(ref _next);
        var model = ModelOf(request);
        if (_fixedBodies is not null)
        {
            return _fixedBodies[model];
        }

        var head = _heads[(PrefixOf(request) * _models.Length) + model];
        var tag = UniqueTag.Format(_run, request);
        var body = new byte[head.Length + tag.Length + _filler.Length + _tail.Length];
        var span = body.AsSpan();
        head.CopyTo(span);
        span = span[head.Length..];
        span = span[Encoding.ASCII.GetBytes(tag, span)..];
        _filler.CopyTo(span);
        _tail.CopyTo(span[_filler.Length..]);
        return body;
    }

    // The conversation the entry's next turn belongs to: each once per round of `conversations`
    // turns, in an order shuffled anew every round (seeded: the same in every run). In a fixed
    // order, round robin would keep every conversation on one worker by accident (turn n and n + 64
    // land on the same one of 4 workers).
    public Conversation NextConversation()
    {
        lock (_turnLock)
        {
            var turn = ++_turns;
            var position = (int)(turn % _conversations.Length);
            if (position == 0)
            {
                var state = SplitMix64.Mix(_seed + (ulong)(turn / _conversations.Length));
                for (var i = _order.Length - 1; i > 0; i--)
                {
                    state = SplitMix64.Mix(state);
                    var j = (int)(state % (ulong)(i + 1));
                    (_order[i], _order[j]) = (_order[j], _order[i]);
                }
            }

            return _conversations[_order[position]];
        }
    }

    // The body of `conversation`'s next turn and its new user message: everything said so far,
    // then a unique user message of turn_chars. Call it while holding the conversation's gate.
    public (byte[] Body, string User) NextTurn(Conversation conversation)
    {
        ArgumentNullException.ThrowIfNull(conversation);
        var user = UniqueTag.Format(_run, Interlocked.Increment(ref _next)) + _turnFiller;
        var said = conversation.Said;
        var messages = new (string Role, string Content)[said.Count + 1];
        for (var i = 0; i < said.Count; i++)
        {
            messages[i] = (i % 2 == 0 ? "user" : "assistant", said[i]);
        }

        messages[^1] = ("user", user);
        return (BuildBody(_models[0], messages), user);
    }

    private byte[] BuildBody(string model, IReadOnlyList<(string Role, string Content)> messages)
    {
        using var output = new MemoryStream();
        using (var json = new Utf8JsonWriter(output))
        {
            json.WriteStartObject();
            json.WriteString("model"u8, model);
            if (_completions)
            {
                // No roles in a completion prompt: the shared text comes first, then the user's.
                json.WriteString("prompt"u8, string.Join("\n\n", messages.Select(m => m.Content)));
            }
            else
            {
                json.WriteStartArray("messages"u8);
                foreach (var (role, content) in messages)
                {
                    json.WriteStartObject();
                    json.WriteString("role"u8, role);
                    json.WriteString("content"u8, content);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            json.WriteNumber("max_tokens"u8, _mix.MaxTokens);
            json.WriteBoolean("stream"u8, _mix.Stream);
            if (_mix.Stream)
            {
                // The final chunk then carries usage, so the report can count tokens.
                json.WriteStartObject("stream_options"u8);
                json.WriteBoolean("include_usage"u8, true);
                json.WriteEndObject();
            }

            if (!string.IsNullOrEmpty(_mix.Tenant))
            {
                json.WriteString("user"u8, _mix.Tenant);
            }

            json.WriteEndObject();
        }

        return output.ToArray();
    }
}
