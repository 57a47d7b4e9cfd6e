using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

internal static class RequestIds
{
    // The client's own x-request-id when it sent a sane one, else a new one. Either way it goes
    // on the response and upstream (vLLM uses it as its request id, so logs line up).
    public static string Ensure(HttpContext context)
    {
        var sent = context.Request.Headers["x-request-id"];
        var id = sent.Count == 1 && sent[0] is { Length: > 0 and <= 128 } value && IsPrintable(value)
            ? value
            : NewId();
        context.Response.Headers["x-request-id"] = id;
        return id;
    }

    private static string NewId() => Guid.CreateVersion7().ToString("N");

    private static bool IsPrintable(string value)
    {
        foreach (var c in value)
        {
            if (c is < (char)0x21 or > (char)0x7e)
            {
                return false;
            }
        }

        return true;
    }
}
