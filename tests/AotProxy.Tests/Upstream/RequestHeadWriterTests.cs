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

        Assert.Equal(-1, RequestHeadWriter.Write(buffer, "POST", new UpstreamEndpoint(new Uri("http://gpu-0/")), "/v1/completions", string.Empty, headers, 17, "req-1", null));
    }

    [Fact]
    public void Endpoint_IPv6_GetsBracketsInHost()
    {
        var endpoint = new UpstreamEndpoint(new Uri("http://[::1]:8001/"));

        Assert.Equal("[::1]:8001", Encoding.ASCII.GetString(endpoint.HostHeader));
        Assert.Equal(8001, endpoint.Port);
    }

    private static string Write(Uri url, string path, string query, IHeaderDictionary headers, string? authorization)
    {
        var buffer = new byte[4096];
        var length = RequestHeadWriter.Write(buffer, "POST", new UpstreamEndpoint(url), path, query, headers, 17, "req-1", authorization);
        return Encoding.Latin1.GetString(buffer, 0, length);
    }
}
