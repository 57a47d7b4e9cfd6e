namespace AotProxy.FunctionalTests.Support;

// One data-plane request as RawWorker saw it: its number in arrival order (from 1), the request
// line's method and path, and its x-request-id (the gateway's warm-up sends "aotproxy-warmup").
internal sealed record RawRequest(int Number, string Method, string Path, string? RequestId)
{
    public const string WarmupId = "aotproxy-warmup";

    public bool IsWarmup => RequestId == WarmupId;

    public static RawRequest Parse(int number, string head)
    {
        var lines = head.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        var id = lines.Skip(1)
            .Select(l => l.Split(':', 2))
            .Where(p => p.Length == 2 && p[0].Trim().Equals("x-request-id", StringComparison.OrdinalIgnoreCase))
            .Select(p => p[1].Trim())
            .FirstOrDefault();
        return new RawRequest(number, requestLine[0], requestLine.Length > 1 ? requestLine[1] : "", id);
    }

    public override string ToString() => $"{Method} {Path} ({RequestId})";
}
