using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// Every error the gateway itself produces, in OpenAI's shape:
// {"error":{"message":"…","type":"…","param":null,"code":"…"}}
internal static class OpenAiError
{
    public static Task WriteAsync(HttpContext context, int status, string type, string code, string message, string? param = null)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            // Too late for a status line: the client sees a cut stream, which is the truth.
            context.Abort();
            return Task.CompletedTask;
        }

        response.StatusCode = status;
        response.ContentType = "application/json";
        using (var json = new Utf8JsonWriter(response.BodyWriter))
        {
            json.WriteStartObject();
            json.WriteStartObject("error"u8);
            json.WriteString("message"u8, message);
            json.WriteString("type"u8, type);
            if (param is null)
            {
                json.WriteNull("param"u8);
            }
            else
            {
                json.WriteString("param"u8, param);
            }

            json.WriteString("code"u8, code);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }

    public static Task InvalidApiKey(HttpContext context) => WriteAsync(
        context, StatusCodes.Status401Unauthorized, "invalid_request_error", "invalid_api_key",
        "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.");

    public static Task NotFound(HttpContext context) => WriteAsync(
        context, StatusCodes.Status404NotFound, "invalid_request_error", "not_found",
        $"Unknown path {context.Request.Method} {context.Request.Path}.");

    public static Task MethodNotAllowed(HttpContext context) => WriteAsync(
        context, StatusCodes.Status405MethodNotAllowed, "invalid_request_error", "method_not_allowed",
        $"{context.Request.Method} is not allowed on {context.Request.Path}.");

    public static Task TooLarge(HttpContext context, long limit) => WriteAsync(
        context, StatusCodes.Status413PayloadTooLarge, "invalid_request_error", "request_too_large",
        $"The request body exceeds the limit of {limit} bytes.");

    public static Task ModelNotFound(HttpContext context, string model) => WriteAsync(
        context, StatusCodes.Status404NotFound, "invalid_request_error", "model_not_found",
        $"The model '{model}' does not exist or no worker serves it.", "model");

    public static Task ModelNotAllowed(HttpContext context, string model) => WriteAsync(
        context, StatusCodes.Status403Forbidden, "invalid_request_error", "model_not_allowed",
        $"Your API key may not use the model '{model}'.", "model");

    public static Task Overloaded(HttpContext context, string message, int retryAfterSeconds)
    {
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "server_error", "overloaded", message);
    }

    public static Task UpstreamFailed(HttpContext context, string message) => WriteAsync(
        context, StatusCodes.Status502BadGateway, "server_error", "upstream_error", message);

    public static Task UpstreamTimeout(HttpContext context, string message) => WriteAsync(
        context, StatusCodes.Status504GatewayTimeout, "server_error", "upstream_timeout", message);
}
