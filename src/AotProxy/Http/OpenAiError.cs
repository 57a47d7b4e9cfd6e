using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using AotProxy.Identity;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// Every error the gateway itself produces, in OpenAI's shape:
// {"error":{"message":"…","type":"…","param":null,"code":"…"}}
// or, for a request to /v1/messages (ErrorDialect.Anthropic), in Anthropic's:
// {"type":"error","error":{"type":"…","message":"…"}}, with the status Anthropic uses (AnthropicError).
internal static class OpenAiError
{
    // The Messages API's path: DataPlaneHandler dispatches on it, and its errors speak Anthropic.
    public const string MessagesPath = "/v1/messages";
    public const string ResponsesPath = "/v1/responses";

    // The codes of a 401 that is not about an API key.
    private const string Token = "invalid_token";
    private const string TrustedHeader = "invalid_trusted_header";
    private const string InsufficientQuotaCode = "insufficient_quota";

    // How much of the client's own text (a model name, a path) an error message quotes; see Echo.
    internal const int MaxEchoChars = 256;

    public static Task WriteAsync(HttpContext context, int status, string type, string code, string message, string? param = null)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            if (IsEventStream(response))
            {
                // Only queue updates start an event stream before the worker's answer
                // (Admission/QueueUpdates): the error ends it as an event, as a client's SDK expects.
                WriteStreamError(response.BodyWriter, StreamEndpointOf(context), type, code, message);
                return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
            }

            // Too late for a status line: the client sees a cut stream, which is the truth.
            context.Abort();
            return Task.CompletedTask;
        }

        response.ContentType = "application/json";
        if (DialectOf(context) == ErrorDialect.Anthropic)
        {
            response.StatusCode = AnthropicError.Status(status);
            AnthropicError.WriteBody(response.BodyWriter, AnthropicError.Type(status), message);
        }
        else
        {
            response.StatusCode = status;
            WriteBody(response.BodyWriter, type, code, message, param);
        }

        return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }

    // The dialect of a data-plane request's errors, from its endpoint (the path DataPlaneHandler
    // dispatched on): only the Messages API speaks Anthropic.
    public static ErrorDialect DialectOf(HttpContext context) =>
        string.Equals(context.Request.Path.Value, MessagesPath, StringComparison.Ordinal) ? ErrorDialect.Anthropic : ErrorDialect.OpenAi;

    // The end of a stream the gateway has to cut after events went out: one SSE event with the
    // error, in the stream's own shape, which the official clients raise. Chat and completions:
    // as vLLM ends a stream that failed mid-way, a data event that holds "error", then
    // "data: [DONE]" (openai-python and openai-node throw APIError with its message). Responses:
    // OpenAI's typed `error` event (type, code, message, param). Messages: Anthropic's
    // `event: error` (the Anthropic SDK throws the APIError of its error.type). The caller flushes.
    public static void WriteStreamError(PipeWriter writer, EndpointKind endpoint, string type, string code, string message)
    {
        switch (endpoint)
        {
            case EndpointKind.Messages:
                writer.Write("event: error\ndata: "u8);
                AnthropicError.WriteBody(writer, AnthropicError.Type(type), message);
                writer.Write("\n\n"u8);
                break;
            case EndpointKind.Responses:
                writer.Write("event: error\ndata: "u8);
                WriteResponsesEvent(writer, code, message);
                writer.Write("\n\n"u8);
                break;
            default:
                writer.Write("data: "u8);
                WriteBody(writer, type, code, message, param: null);
                writer.Write("\n\ndata: [DONE]\n\n"u8);
                break;
        }
    }

    // The endpoint of a request whose event stream the gateway started itself (queue updates).
    private static EndpointKind StreamEndpointOf(HttpContext context) => context.Request.Path.Value switch
    {
        MessagesPath => EndpointKind.Messages,
        ResponsesPath => EndpointKind.Responses,
        _ => EndpointKind.ChatCompletions,
    };

    // OpenAI's ResponseErrorEvent: {"type":"error","code":…,"message":…,"param":null}.
    private static void WriteResponsesEvent(IBufferWriter<byte> writer, string code, string message)
    {
        using var json = new Utf8JsonWriter(writer);
        json.WriteStartObject();
        json.WriteString("type"u8, "error"u8);
        json.WriteString("code"u8, code);
        json.WriteString("message"u8, message);
        json.WriteNull("param"u8);
        json.WriteEndObject();
    }

    private static bool IsEventStream(HttpResponse response) =>
        response.ContentType is { } type && type.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase);

    private static void WriteBody(IBufferWriter<byte> writer, string type, string code, string message, string? param)
    {
        using var json = new Utf8JsonWriter(writer);
        json.WriteStartObject();
        json.WriteStartObject("error"u8);
        json.WriteString("message"u8, message);
        json.WriteString("type"u8, type);
        json.WriteString("param"u8, param); // a null string is written as JSON null

        json.WriteString("code"u8, code);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    // 401 with what failed, so that whoever runs the client or the IdP knows what to fix. Token
    // failures also carry RFC 6750's WWW-Authenticate, which OAuth clients read to refresh.
    public static Task Unidentified(HttpContext context, IdentifyFailure failure)
    {
        var (code, message) = failure switch
        {
            IdentifyFailure.MalformedToken => (Token, "The bearer token is not a well-formed JWT: three base64url parts, a JSON header and JSON claims, each claim once."),
            IdentifyFailure.InvalidText => (Token, "The token's header or claims are not valid UTF-8 text (invalid bytes, or an escaped lone surrogate such as \\ud800)."),
            IdentifyFailure.TokenTooLarge => (Token, $"The bearer token is longer than {JwtValidator.MaxTokenChars} characters."),
            IdentifyFailure.UnsupportedAlgorithm => (Token, "The token's signing algorithm (alg) is not accepted: the gateway verifies only HS256, RS256 and ES256 with keys it is configured with, and never 'none'."),
            IdentifyFailure.UnsupportedHeader => (Token, "The token's header lists critical extensions (crit) that the gateway does not support."),
            IdentifyFailure.UnknownKey => (Token, "The token's key id (kid) matches no configured key, or the token has no kid and more than one key could have signed it."),
            IdentifyFailure.BadSignature => (Token, "The token's signature is invalid."),
            IdentifyFailure.MissingExpiry => (Token, "The token has no expiry time (exp claim); the gateway accepts only tokens that expire."),
            IdentifyFailure.Expired => (Token, "The token has expired (exp)."),
            IdentifyFailure.NotYetValid => (Token, "The token is not valid yet (nbf or iat lies in the future)."),
            IdentifyFailure.WrongIssuer => (Token, "The token's issuer (iss) is not the one this gateway accepts."),
            IdentifyFailure.WrongAudience => (Token, "The token's audience (aud) does not include this gateway."),
            IdentifyFailure.MissingTenantClaim => (Token, "The token has no tenant claim (a string naming the tenant)."),
            IdentifyFailure.UnknownTenant => (Token, "The token's tenant claim names no configured tenant."),
            IdentifyFailure.UnknownClass => (Token, "The token's class claim names no configured class."),
            IdentifyFailure.InvalidTenantHeader => (TrustedHeader, "The x-tenant header must name one configured tenant."),
            IdentifyFailure.InvalidTierHeader => (TrustedHeader, "The x-customer-tier header must name one configured class."),
            IdentifyFailure.InvalidPriorityHeader => (TrustedHeader, "The x-priority header must be one integer from 0 (most important) to 9."),
            IdentifyFailure.ExpiredApiKey => ("expired_api_key", "The API key has expired (its expires_at or a rotation's valid_until has passed)."),
            IdentifyFailure.OutsideKeyWindow => ("api_key_outside_window", "The API key may not be used at this time of day (its window, UTC)."),
            _ => ("invalid_api_key", DialectOf(context) == ErrorDialect.Anthropic
                ? "Incorrect or missing API key. Send it as 'x-api-key: <key>' or 'Authorization: Bearer <key>'."
                : "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'."),
        };
        if (code == Token)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        }

        return WriteAsync(context, StatusCodes.Status401Unauthorized, "invalid_request_error", code, message);
    }

    public static Task NotFound(HttpContext context) => WriteAsync(
        context, StatusCodes.Status404NotFound, "invalid_request_error", "not_found",
        $"Unknown path {Echo(context.Request.Method)} {Echo(context.Request.Path.Value)}.");

    public static Task MethodNotAllowed(HttpContext context) => WriteAsync(
        context, StatusCodes.Status405MethodNotAllowed, "invalid_request_error", "method_not_allowed",
        $"{Echo(context.Request.Method)} is not allowed on {Echo(context.Request.Path.Value)}.");

    public static Task TooLarge(HttpContext context, long limit) => WriteAsync(
        context, StatusCodes.Status413PayloadTooLarge, "invalid_request_error", "request_too_large",
        $"The request body exceeds the limit of {limit} bytes.");

    public static Task ModelNotFound(HttpContext context, string model) => WriteAsync(
        context, StatusCodes.Status404NotFound, "invalid_request_error", "model_not_found",
        $"The model '{Echo(model)}' does not exist or no worker serves it.", "model");

    public static Task ModelNotAllowed(HttpContext context, string model) => WriteAsync(
        context, StatusCodes.Status403Forbidden, "invalid_request_error", "model_not_allowed",
        $"Your API key may not use the model '{Echo(model)}'.", "model");

    public static Task Overloaded(HttpContext context, string message, int retryAfterSeconds) =>
        WithRetryAfter(context, StatusCodes.Status503ServiceUnavailable, "server_error", "overloaded", message, retryAfterSeconds);

    // Per-class protection sheds the caller's class while the fleet degrades (ClassProtection).
    public static Task ClassShed(HttpContext context, string message, int retryAfterSeconds) =>
        WithRetryAfter(context, StatusCodes.Status503ServiceUnavailable, "server_error", "class_shed", message, retryAfterSeconds);

    // [cluster] store_down = "closed": a limited tenant waits for the shared limit store (also the
    // code of the event that ends a stream whose next budget block the store did not answer).
    public const string LimitStoreUnavailableCode = "limit_store_unavailable";

    public static Task LimitStoreUnavailable(HttpContext context, int retryAfterSeconds) =>
        WithRetryAfter(
            context,
            StatusCodes.Status503ServiceUnavailable,
            "server_error",
            LimitStoreUnavailableCode,
            $"The limit store is unavailable: your limits are shared by the gateway's replicas and cannot be checked now; retry after {retryAfterSeconds} s.",
            retryAfterSeconds);

    // type: "requests" or "tokens", as OpenAI's 429s say which limit was hit.
    public static Task RateLimited(HttpContext context, string type, string message, int retryAfterSeconds) =>
        WithRetryAfter(context, StatusCodes.Status429TooManyRequests, type, "rate_limit_exceeded", message, retryAfterSeconds);

    // A budget is used up (OpenAI's type and code for an account out of credit).
    public static Task InsufficientQuota(HttpContext context, string message, int retryAfterSeconds) =>
        WithRetryAfter(context, StatusCodes.Status429TooManyRequests, InsufficientQuotaCode, InsufficientQuotaCode, message, retryAfterSeconds);

    private static Task WithRetryAfter(HttpContext context, int status, string type, string code, string message, int retryAfterSeconds)
    {
        if (context.Response.HasStarted)
        {
            return WriteAsync(context, status, type, code, message); // the head went out: no header now
        }

        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return WriteAsync(context, status, type, code, message);
    }

    public static Task UpstreamFailed(HttpContext context, string message) => WriteAsync(
        context, StatusCodes.Status502BadGateway, "server_error", "upstream_error", message);

    public static Task UpstreamTimeout(HttpContext context, string message) => WriteAsync(
        context, StatusCodes.Status504GatewayTimeout, "server_error", "upstream_timeout", message);

    // The client's own text (a model name, a path) as an error message quotes it: its first
    // MaxEchoChars, then "…". A body may hold a 4 MiB model name, and a 404 must not send it back
    // whole (issue 14); the first 256 characters tell anyone which name it was.
    internal static string Echo(string? text)
    {
        if (text is null || text.Length <= MaxEchoChars)
        {
            return text ?? string.Empty;
        }

        // Never half a surrogate pair, which the JSON writer would send as U+FFFD.
        var cut = char.IsHighSurrogate(text[MaxEchoChars - 1]) ? MaxEchoChars - 1 : MaxEchoChars;
        return string.Concat(text.AsSpan(0, cut), "…");
    }
}
