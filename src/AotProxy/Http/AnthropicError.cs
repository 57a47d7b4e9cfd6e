using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// The gateway's errors as Anthropic's API writes them, for /v1/messages (ErrorDialect.Anthropic):
// {"type":"error","error":{"type":"…","message":"…"}}. The Anthropic SDKs pick their exception
// class from the status (401 AuthenticationError, 429 RateLimitError, 529 overloaded, ...), so
// the status is Anthropic's too; the headers (retry-after, x-ratelimit-*, x-request-id) stay.
internal static class AnthropicError
{
    // Anthropic's status for an overloaded API; the gateway's 503s (queue full, no worker, shed).
    public const int OverloadedStatus = 529;

    public static int Status(int status) => status == StatusCodes.Status503ServiceUnavailable ? OverloadedStatus : status;

    // Anthropic's error type for the gateway's status (docs.anthropic.com/en/api/errors).
    public static string Type(int status) => status switch
    {
        StatusCodes.Status401Unauthorized => "authentication_error",
        StatusCodes.Status403Forbidden => "permission_error",
        StatusCodes.Status404NotFound => "not_found_error",
        StatusCodes.Status413PayloadTooLarge => "request_too_large",
        StatusCodes.Status429TooManyRequests => "rate_limit_error",
        StatusCodes.Status503ServiceUnavailable or OverloadedStatus => "overloaded_error",
        >= 500 => "api_error",
        _ => "invalid_request_error",
    };

    // A mid-stream error has no status of its own: its type from the OpenAI type the gateway gave it.
    public static string Type(string openAiType) => openAiType switch
    {
        "insufficient_quota" or "requests" or "tokens" => "rate_limit_error",
        "invalid_request_error" => "invalid_request_error",
        _ => "api_error",
    };

    public static void WriteBody(IBufferWriter<byte> writer, string type, string message)
    {
        using var json = new Utf8JsonWriter(writer);
        json.WriteStartObject();
        json.WriteString("type"u8, "error"u8);
        json.WriteStartObject("error"u8);
        json.WriteString("type"u8, type);
        json.WriteString("message"u8, message);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
