using System.IO.Compression;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Admin.Dashboard;

// GET /dashboard: the live console, one HTML file with its CSS and script inline, embedded in the
// binary (dashboard.html). It holds no data, so it needs no admin token; its script asks for one
// when /api/events answers 401. The content security policy lets it reach this origin only: no
// CDN, no font, no beacon, even if an edit slipped one in. Gzipped once at startup for clients
// that accept it; the ETag lets a reload of the page cost a 304.
internal sealed class DashboardPage
{
    public const string ResourceName = "dashboard.html";

    private const string Policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private DashboardPage(byte[] html)
    {
        Html = html;
        using var gzipped = new MemoryStream();
        using (var gzip = new GZipStream(gzipped, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(html);
        }

        Gzipped = gzipped.ToArray();
        ETag = "\"" + Convert.ToHexStringLower(SHA256.HashData(html), 0, 8) + "\"";
    }

    public byte[] Html { get; }

    public byte[] Gzipped { get; }

    public string ETag { get; }

    public static DashboardPage Load()
    {
        using var resource = typeof(DashboardPage).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The binary carries no {ResourceName}.");
        using var bytes = new MemoryStream();
        resource.CopyTo(bytes);
        return new DashboardPage(bytes.ToArray());
    }

    public Task WriteAsync(HttpContext context)
    {
        var response = context.Response;
        var headers = response.Headers;
        headers.ETag = ETag;
        headers.CacheControl = "no-cache";
        headers.Vary = "Accept-Encoding";
        headers.ContentSecurityPolicy = Policy;
        headers.XContentTypeOptions = "nosniff";
        headers["referrer-policy"] = "no-referrer";
        if (context.Request.Headers.IfNoneMatch.ToString().Contains(ETag, StringComparison.Ordinal))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        response.ContentType = "text/html; charset=utf-8";
        var body = Html;
        if (context.Request.Headers.AcceptEncoding.ToString().Contains("gzip", StringComparison.OrdinalIgnoreCase))
        {
            headers.ContentEncoding = "gzip";
            body = Gzipped;
        }

        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }
}
