using System.Net;
using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

public sealed class ListenAddressTests
{
    [Theory]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 8080)]
    [InlineData("0.0.0.0:80", "0.0.0.0", 80)]
    [InlineData("[::1]:9090", "::1", 9090)]
    [InlineData("[::]:0", "::", 0)]
    [InlineData("localhost:8080", "127.0.0.1", 8080)]
    [InlineData("LOCALHOST:65535", "127.0.0.1", 65535)]
    public void TryParse_ValidAddress_GivesEndPoint(string text, string address, int port)
    {
        Assert.True(ListenAddress.TryParse(text, out var endPoint, out var error), error);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(address), port), endPoint);
    }

    [Theory]
    [InlineData("")]
    [InlineData("8080")]
    [InlineData(":8080")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:-1")]
    [InlineData("127.0.0.1:80a")]
    [InlineData("::1:8080")]
    [InlineData("[::1]8080")]
    [InlineData("example.com:80")]
    public void TryParse_InvalidAddress_FailsWithMessage(string text)
    {
        Assert.False(ListenAddress.TryParse(text, out var endPoint, out var error));
        Assert.Null(endPoint);
        Assert.False(string.IsNullOrWhiteSpace(error));
    }
}
