using System.Globalization;
using System.Text.Json;

namespace AotProxy.Simulator;

// OpenAI's 429 body for a rate limit (type "requests" or "tokens", code "rate_limit_exceeded"),
// which differs from vLLM's error shape: its code is a string.
internal static class RateLimitErrorJson
{
    public static void Write(Utf8JsonWriter writer, string model, string type, long limit, long used, long requested, TimeSpan retryAfter)
    {
        var unit = type == "tokens" ? "tokens per min (TPM)" : "requests per min (RPM)";
        var message = string.Create(
            CultureInfo.InvariantCulture,
            $"Rate limit reached for {model} in organization org-simulated on {unit}: Limit {limit}, Used {used}, Requested {requested}. Please try again in {Math.Ceiling(retryAfter.TotalMilliseconds)}ms. Visit https://platform.openai.com/account/rate-limits to learn more.");
        writer.WriteStartObject();
        writer.WriteStartObject("error"u8);
        writer.WriteString("message"u8, message);
        writer.WriteString("type"u8, type);
        writer.WriteNull("param"u8);
        writer.WriteString("code"u8, "rate_limit_exceeded"u8);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
