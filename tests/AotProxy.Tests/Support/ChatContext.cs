using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Tests.Support;

// A small non-streamed chat completion as the data plane's HandleAsync takes it: a
// DefaultHttpContext from loopback with the key, the request id and a body; the response body
// is a MemoryStream the test reads back.
internal static class ChatContext
{
    // stream: the answer asked for as an event stream.
    public static DefaultHttpContext Create(string key, string requestId, string model, bool stream = false)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Path = "/v1/chat/completions";
        context.Request.Headers.Authorization = "Bearer " + key;
        context.Request.Headers["x-request-id"] = requestId;
        var body = Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hello"}],"max_tokens":8{{(stream ? ",\"stream\":true" : "")}}}""");
        context.Request.Body = new MemoryStream(body);
        context.Request.ContentLength = body.Length;
        context.Response.Body = new MemoryStream();
        context.Connection.RemoteIpAddress = IPAddress.Loopback;
        return context;
    }
}
