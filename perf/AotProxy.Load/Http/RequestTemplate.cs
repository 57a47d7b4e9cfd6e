using System.Text;
using System.Text.Json;
using AotProxy.Load.Profiles;

namespace AotProxy.Load.Http;

// The bytes of one [[mix]] entry's request, built once: every request of the entry sends the same
// body, so the runner spends no time on JSON while the schedule runs.
internal sealed class RequestTemplate
{
    // English-like text: about 4 characters per token, as the gateway estimates prompt size.
    private const string Filler = "The quick brown fox jumps over the lazy dog while the load runner counts tokens. ";

    private RequestTemplate(byte[] body, string authorization, bool stream)
    {
        Body = body;
        Authorization = authorization;
        Stream = stream;
    }

    public byte[] Body { get; }

    // "" when no key applies: the request goes without Authorization.
    public string Authorization { get; }

    public bool Stream { get; }

    public static RequestTemplate Create(LoadProfile profile, MixEntry mix, string? keyOverride)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(mix);

        // The entry's own key wins (mixed-tenants sends three tenants' keys); then --key; then
        // the scenario's.
        var key = mix.ApiKey.Length > 0 ? mix.ApiKey : !string.IsNullOrEmpty(keyOverride) ? keyOverride : profile.ApiKey;
        return new RequestTemplate(BuildBody(profile, mix), key.Length > 0 ? $"Bearer {key}" : "", mix.Stream);
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

    private static byte[] BuildBody(LoadProfile profile, MixEntry mix)
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
                json.WriteString("prompt"u8, Prompt(mix.PromptChars));
            }
            else
            {
                json.WriteStartArray("messages"u8);
                json.WriteStartObject();
                json.WriteString("role"u8, "user"u8);
                json.WriteString("content"u8, Prompt(mix.PromptChars));
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
