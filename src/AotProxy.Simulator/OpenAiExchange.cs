using Microsoft.AspNetCore.Http;

namespace AotProxy.Simulator;

// One generation request on its way through OpenAiEndpoint.
internal sealed class OpenAiExchange(HttpContext context, ParsedRequest request, RequestKind kind, string id, long created, CancellationToken aborted)
{
    public HttpContext Context { get; } = context;

    public ParsedRequest Request { get; } = request;

    public RequestKind Kind { get; } = kind;

    public string Id { get; } = id;

    public long Created { get; } = created;

    public CancellationToken Aborted { get; } = aborted;

    // Snapshots taken on arrival, so flipping a switch mid-stream does not change that stream.
    public int ResetAfterTokens { get; init; } = -1;

    public TimeSpan InterTokenDelay { get; init; }

    public int TokensSent { get; set; }
}
