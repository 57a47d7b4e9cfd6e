using System.Buffers;
using System.Net.Http.Headers;
using System.Text.Json;

namespace AotProxy.Routing;

// The one real request a joining or recovered worker answers before it takes traffic: a
// one-token completion on one of its models (a worker that serves only chat, 404/400 to it, gets
// the same as a chat). 2xx within the timeout: warm. Every failure is a value (the reason); only
// the caller's cancellation throws.
internal static class WarmupRequest
{
    public static async ValueTask<string?> SendAsync(HttpMessageInvoker http, WorkerState worker, string model, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            var status = await PostAsync(http, worker, "v1/completions", Body(model, chat: false), deadline.Token).ConfigureAwait(false);
            if (status is 400 or 404)
            {
                status = await PostAsync(http, worker, "v1/chat/completions", Body(model, chat: true), deadline.Token).ConfigureAwait(false);
            }

            return status is >= 200 and < 300 ? null : $"HTTP {status}";
        }
        catch (Exception ex) when (ProbeFailure.IsTransport(ex))
        {
            ct.ThrowIfCancellationRequested();
            return deadline.IsCancellationRequested ? "timeout" : ex.Message;
        }
    }

    private static async Task<int> PostAsync(HttpMessageInvoker http, WorkerState worker, string path, byte[] body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(worker.Model.Url, path))
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        if (worker.Authorization is { } authorization)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        request.Headers.TryAddWithoutValidation("x-request-id", "aotproxy-warmup");
        using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
        await response.Content.LoadIntoBufferAsync(ct).ConfigureAwait(false); // the whole answer: the token was generated
        return (int)response.StatusCode;
    }

    // {"model":…,"prompt":"Hi","max_tokens":1}, or the chat form.
    internal static byte[] Body(string model, bool chat)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model"u8, model);
            if (chat)
            {
                json.WriteStartArray("messages"u8);
                json.WriteStartObject();
                json.WriteString("role"u8, "user"u8);
                json.WriteString("content"u8, "Hi"u8);
                json.WriteEndObject();
                json.WriteEndArray();
            }
            else
            {
                json.WriteString("prompt"u8, "Hi"u8);
            }

            json.WriteNumber("max_tokens"u8, 1);
            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
