using System.Buffers;
using System.IO.Pipelines;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Simulator;

internal static class HttpResponses
{
    // Pydantic writes UTF-8 as is and escapes only what JSON requires; the default encoder would
    // turn '+', '<', '\'' and every non-ASCII character into \uXXXX and break byte comparisons.
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public const string Json = "application/json";

    // Bodies are bounded so that a runaway client cannot make a test process swap.
    public const long MaxRequestBodyBytes = 64L * 1024 * 1024;

    public static async Task SendAsync(HttpContext context, int status, string? contentType, ReadOnlyMemory<byte> body)
    {
        var response = context.Response;
        response.StatusCode = status;
        if (contentType is not null)
        {
            response.ContentType = contentType;
        }

        response.ContentLength = body.Length;
        if (body.Length > 0)
        {
            await response.BodyWriter.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    public static Task SendErrorAsync(HttpContext context, int status, string type, string message, string? param = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, JsonOptions))
        {
            VllmErrorJson.Write(writer, message, type, status, param);
        }

        return SendAsync(context, status, Json, buffer.WrittenMemory);
    }

    public static Task NotFoundAsync(HttpContext context) =>
        SendErrorAsync(context, StatusCodes.Status404NotFound, "NotFoundError", "Not Found");

    public static Task MethodNotAllowedAsync(HttpContext context) =>
        SendErrorAsync(context, StatusCodes.Status405MethodNotAllowed, "MethodNotAllowed", "Method Not Allowed");

    // The whole body, buffered by the pipe: the caller parses it in place and must AdvanceTo(End).
    // Null when it exceeds MaxRequestBodyBytes (consumed and dropped).
    public static async Task<ReadResult?> ReadBodyAsync(PipeReader reader, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            if (result.Buffer.Length > MaxRequestBodyBytes)
            {
                reader.AdvanceTo(result.Buffer.End);
                return null;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return result;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }
}
