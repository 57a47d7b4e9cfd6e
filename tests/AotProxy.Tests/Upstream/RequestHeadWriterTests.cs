using System.Diagnostics;
using System.Net;
using System.Text;
using AotProxy.Upstream;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Tests.Upstream;

public sealed class RequestHeadWriterTests
{
    [Fact]
    public void Write_DropsHopByHopAndClientKey_AddsWorkerHeaders()
    {
        var headers = new HeaderDictionary
        {
            ["Host"] = "gateway:8080",
            ["Authorization"] = "Bearer sk-client",
            ["Connection"] = "keep-alive",
            ["Content-Length"] = "17",
            ["Accept-Encoding"] = "gzip",
            ["x-request-id"] = "client-id",
            ["Content-Type"] = "application/json",
            ["OpenAI-Organization"] = "org-1",
            ["X-Multi"] = new(["a", "b"]),
        };

        var text = Write(new Uri("http://10.0.0.7:8000/vllm/"), "/v1/chat/completions", "?x=1", headers, "Bearer sk-worker");

        Assert.Equal(
            "POST /vllm/v1/chat/completions?x=1 HTTP/1.1\r\n" +
            "Host: 10.0.0.7:8000\r\n" +
            "Content-Length: 17\r\n" +
            "Content-Type: application/json\r\n" +
            "OpenAI-Organization: org-1\r\n" +
            "X-Multi: a\r\n" +
            "X-Multi: b\r\n" +
            "x-request-id: req-1\r\n" +
            "Authorization: Bearer sk-worker\r\n\r\n",
            text);
    }

    [Fact]
    public void Write_WithoutContentTypeOrWorkerKey_DefaultsToJsonAndSendsNoAuthorization()
    {
        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, new HeaderDictionary(), authorization: null);

        Assert.Equal(
            "POST /v1/completions HTTP/1.1\r\nHost: gpu-0\r\nContent-Length: 17\r\nContent-Type: application/json\r\nx-request-id: req-1\r\n\r\n",
            text);
    }

    [Fact]
    public void Write_IntoTooSmallABuffer_ReturnsMinusOne()
    {
        var headers = new HeaderDictionary { ["X-Big"] = new string('a', 500) };
        var buffer = new byte[300];

        Assert.Equal(-1, RequestHeadWriter.Write(buffer, "POST", new UpstreamEndpoint(new Uri("http://gpu-0/")), "/v1/completions", string.Empty, headers, 17, "req-1", null, null, false));
    }

    [Fact]
    public void Write_FromAnUntrustedPeer_ReplacesItsForwardedHeadersWithThePeer()
    {
        var headers = new HeaderDictionary
        {
            ["X-Forwarded-For"] = "203.0.113.9",
            ["Forwarded"] = "for=203.0.113.9",
            ["X-Real-IP"] = "203.0.113.9",
            ["X-Forwarded-Proto"] = "https",
            ["X-Forwarded-Host"] = "evil.example",
            ["X-Forwarded-Port"] = "443",
        };

        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, headers, null, IPAddress.Parse("::ffff:192.0.2.7"));

        Assert.Equal(
            "POST /v1/completions HTTP/1.1\r\nHost: gpu-0\r\nContent-Length: 17\r\n" +
            "X-Forwarded-For: 192.0.2.7\r\nContent-Type: application/json\r\nx-request-id: req-1\r\n\r\n",
            text);
    }

    [Fact]
    public void Write_FromATrustedProxy_AppendsThePeerToEveryForwardedForLine()
    {
        var headers = new HeaderDictionary
        {
            ["x-forwarded-for"] = new(["203.0.113.9", " 10.0.0.1, 10.0.0.2 ", ""]),
            ["Forwarded"] = "for=203.0.113.9",
            ["X-Real-IP"] = "203.0.113.9",
        };

        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, headers, null, IPAddress.Parse("2001:db8::1"), trustedProxy: true);

        Assert.Contains("\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1, 10.0.0.2, 2001:db8::1\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\r\nForwarded: for=203.0.113.9\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Real-IP: 203.0.113.9\r\n", text, StringComparison.Ordinal);
        Assert.Single(text.Split("\r\n"), l => l.StartsWith("X-Forwarded-For", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Write_WithoutAPeer_SendsNoForwardedFor()
    {
        var headers = new HeaderDictionary { ["X-Forwarded-For"] = "203.0.113.9" };

        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, headers, null, peer: null, trustedProxy: false);

        Assert.DoesNotContain("Forwarded", text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Write_DropsTheHeadersTheConnectionHeaderNames()
    {
        var headers = new HeaderDictionary
        {
            ["Connection"] = new(["keep-alive, X-Hop", " x-forwarded-for ,\tOther-Hop"]),
            ["X-Hop"] = "1",
            ["other-hop"] = "2",
            ["X-Kept"] = "3",
            ["X-Forwarded-For"] = "203.0.113.9",
        };

        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, headers, null, IPAddress.Loopback, trustedProxy: true);

        Assert.Equal(
            "POST /v1/completions HTTP/1.1\r\nHost: gpu-0\r\nContent-Length: 17\r\n" +
            "X-Kept: 3\r\nX-Forwarded-For: 127.0.0.1\r\nContent-Type: application/json\r\nx-request-id: req-1\r\n\r\n",
            text);
    }

    [Fact]
    public void Write_NonAsciiValues_AsUtf8()
    {
        // Kestrel hands over "é" and "€" decoded from the client's UTF-8; they go out as those bytes again.
        var headers = new HeaderDictionary { ["X-Note"] = "café 5 € 日本" };
        var buffer = new byte[4096];

        var length = RequestHeadWriter.Write(buffer, "POST", new UpstreamEndpoint(new Uri("http://gpu-0/")), "/v1/completions", string.Empty, headers, 17, "req-1", null, null, false);

        Assert.True(buffer.AsSpan(0, length).IndexOf(Encoding.UTF8.GetBytes("\r\nX-Note: café 5 € 日本\r\n")) >= 0, Encoding.Latin1.GetString(buffer, 0, length));
    }

    [Fact]
    public void Write_NonAsciiValueThatDoesNotFit_ReturnsMinusOne()
    {
        // 600 chars, 1,800 bytes in UTF-8: a check on chars alone would overrun.
        var headers = new HeaderDictionary { ["X-Big"] = new string('€', 600) };
        var buffer = new byte[1024];

        Assert.Equal(-1, RequestHeadWriter.Write(buffer, "POST", new UpstreamEndpoint(new Uri("http://gpu-0/")), "/v1/completions", string.Empty, headers, 17, "req-1", null, null, false));
    }

    [Fact]
    public void Write_WithAnAttemptSpan_ReplacesTheClientsTraceContextWithTheSpans()
    {
        var headers = new HeaderDictionary
        {
            ["traceparent"] = "00-11111111111111111111111111111111-2222222222222222-01",
            ["TraceState"] = "client=1",
            ["X-Kept"] = "1",
        };
        using var span = new Activity("upstream");
        span.SetParentId(ActivityTraceId.CreateFromString("0af7651916cd43dd8448eb211c80319c"), ActivitySpanId.CreateFromString("b7ad6b7169203331"), ActivityTraceFlags.Recorded);
        span.TraceStateString = "gw=2,client=1";
        span.Start();

        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, headers, authorization: "Bearer sk-worker", trace: span);

        Assert.Equal(
            "POST /v1/completions HTTP/1.1\r\nHost: gpu-0\r\nContent-Length: 17\r\nX-Kept: 1\r\nContent-Type: application/json\r\n" +
            "x-request-id: req-1\r\nAuthorization: Bearer sk-worker\r\n" +
            $"traceparent: 00-0af7651916cd43dd8448eb211c80319c-{span.SpanId.ToHexString()}-01\r\ntracestate: gw=2,client=1\r\n\r\n",
            text);
    }

    [Fact]
    public void Write_WithAnUnsampledSpanAndNoTracestate_WritesFlagsZeroAndNoTracestate()
    {
        using var span = new Activity("upstream");
        span.SetParentId(ActivityTraceId.CreateFromString("0af7651916cd43dd8448eb211c80319c"), ActivitySpanId.CreateFromString("b7ad6b7169203331"), ActivityTraceFlags.None);
        span.Start();

        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, new HeaderDictionary(), authorization: null, trace: span);

        Assert.Equal(
            "POST /v1/completions HTTP/1.1\r\nHost: gpu-0\r\nContent-Length: 17\r\nContent-Type: application/json\r\nx-request-id: req-1\r\n" +
            $"traceparent: 00-0af7651916cd43dd8448eb211c80319c-{span.SpanId.ToHexString()}-00\r\n\r\n",
            text);
    }

    [Fact]
    public void Write_WithoutASpan_PassesTheClientsTraceContextOn()
    {
        var headers = new HeaderDictionary
        {
            ["traceparent"] = "00-11111111111111111111111111111111-2222222222222222-01",
            ["tracestate"] = "client=1",
        };

        var text = Write(new Uri("http://gpu-0/"), "/v1/completions", string.Empty, headers, authorization: null);

        Assert.Equal(
            "POST /v1/completions HTTP/1.1\r\nHost: gpu-0\r\nContent-Length: 17\r\n" +
            "traceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\ntracestate: client=1\r\n" +
            "Content-Type: application/json\r\nx-request-id: req-1\r\n\r\n",
            text);
    }

    [Fact]
    public void Endpoint_IPv6_GetsBracketsInHost()
    {
        var endpoint = new UpstreamEndpoint(new Uri("http://[::1]:8001/"));

        Assert.Equal("[::1]:8001", Encoding.ASCII.GetString(endpoint.HostHeader));
        Assert.Equal(8001, endpoint.Port);
    }

    private static string Write(Uri url, string path, string query, IHeaderDictionary headers, string? authorization, IPAddress? peer = null, bool trustedProxy = false, Activity? trace = null)
    {
        var buffer = new byte[4096];
        var length = RequestHeadWriter.Write(buffer, "POST", new UpstreamEndpoint(url), path, query, headers, 17, "req-1", authorization, peer, trustedProxy, trace);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}
