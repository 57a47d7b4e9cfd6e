using System.Text;
using System.Text.Json;
using AotProxy.Load.Profiles;

namespace AotProxy.Load.Http;

// The bytes of one [[mix]] entry's requests, built once. A plain entry sends the same body every
// time, so the runner spends no time on JSON while the schedule runs. With unique prompts or
// shared prefixes, each body is three pre-built pieces around the request's own tag: the head (up
// to the user message, with one of the shared system messages), the tag plus filler, the tail.
internal sealed class RequestTemplate
{
    // English-like text: about 4 characters per token, as the gateway estimates prompt size.
    private const string Filler = "The quick brown fox jumps over the lazy dog while the load runner counts tokens. ";

    // Written where the unique user message goes, then cut out: a control character is always
    // escaped as \u0001, and no prompt text contains one.
    private const string Marker = "\u0001";
    private static readonly byte[] MarkerJson = "\\u0001"u8.ToArray();

    private readonly byte[]? _fixedBody;
    private readonly byte[][] _heads = [];
    private readonly byte[] _filler = [];
    private readonly byte[] _tail = [];
    private readonly uint _run;
    private readonly ulong _seed;
    private long _next = -1;

    private RequestTemplate(LoadProfile profile, MixEntry mix, string authorization)
    {
        Authorization = authorization;
        Stream = mix.Stream;
        SharedPrefixes = mix.SharedPrefixes;
        if (!mix.UniquePrompts && mix.SharedPrefixes == 0)
        {
            _fixedBody = BuildBody(profile, mix, null, Prompt(mix.PromptChars));
            return;
        }

        // Every prefix text ends up in a head; the tail is the same for all of them.
        var prefixes = Math.Max(1, mix.SharedPrefixes);
        _heads = new byte[prefixes][];
        for (var i = 0; i < prefixes; i++)
        {
            var body = BuildBody(profile, mix, mix.SharedPrefixes > 0 ? SharedPrefix.Text(i, mix.PrefixChars) : null, Marker);
            var at = body.AsSpan().IndexOf(MarkerJson);
            _heads[i] = body[..at];
            _tail = body[(at + MarkerJson.Length)..];
        }

        _filler = Encoding.ASCII.GetBytes(Prompt(mix.PromptChars - UniqueTag.Length));
        _run = (uint)Random.Shared.NextInt64(1L << 32);
        _seed = SplitMix64.Seed(mix.Name);
    }

    // "" when no key applies: the request goes without Authorization.
    public string Authorization { get; }

    public bool Stream { get; }

    public int SharedPrefixes { get; }

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

    // Safe from any thread: each call takes the next request number.
    public byte[] NextBody()
    {
        if (_fixedBody is not null)
        {
            return _fixedBody;
        }

        var request = Interlocked.Increment(ref _next);
        var head = _heads[PrefixOf(request)];
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

    private static byte[] BuildBody(LoadProfile profile, MixEntry mix, string? system, string user)
    {
        // /v1/completions takes "prompt"; /v1/chat/completions (and anything else) "messages".
        var completions = profile.Path.EndsWith("/completions", StringComparison.Ordinal) && !profile.Path.EndsWith("/chat/completions", StringComparison.Ordinal);
        using var output = new MemoryStream();
        using (var json = new Utf8JsonWriter(output))
        {
            json.WriteStartObject();
            json.WriteString("model"u8, profile.Model);
            if (completions)
            {
                // No roles in a completion prompt: the shared text comes first, then the user's.
                json.WriteString("prompt"u8, system is null ? user : $"{system}\n\n{user}");
            }
            else
            {
                json.WriteStartArray("messages"u8);
                if (system is not null)
                {
                    json.WriteStartObject();
                    json.WriteString("role"u8, "system"u8);
                    json.WriteString("content"u8, system);
                    json.WriteEndObject();
                }

                json.WriteStartObject();
                json.WriteString("role"u8, "user"u8);
                json.WriteString("content"u8, user);
                json.WriteEndObject();
                json.WriteEndArray();
            }

            json.WriteNumber("max_tokens"u8, mix.MaxTokens);
            json.WriteBoolean("stream"u8, mix.Stream);
            if (mix.Stream)
            {
                // The final chunk then carries usage, so the report can count tokens.
                json.WriteStartObject("stream_options"u8);
                json.WriteBoolean("include_usage"u8, true);
                json.WriteEndObject();
            }

            if (!string.IsNullOrEmpty(mix.Tenant))
            {
                json.WriteString("user"u8, mix.Tenant);
            }

            json.WriteEndObject();
        }

        return output.ToArray();
    }
}
