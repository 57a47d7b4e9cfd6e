using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using AotProxy.Configuration;
using AotProxy.Identity;

namespace AotProxy.Tests.Identity;

public class ApiKeyIndexTests
{
    [Fact]
    public void Find_KnownKeys_ReturnTheirTenantAndUnknownKeysNothing()
    {
        var acme = Tenant("acme", "sk-acme-1", "sk-acme-2");
        var beta = Tenant("beta", "sk-beta");
        var index = new ApiKeyIndex([acme, beta]);

        Assert.Same(acme, index.Find("sk-acme-1"));
        Assert.Same(acme, index.Find("sk-acme-2"));
        Assert.Same(beta, index.Find("sk-beta"));
        Assert.Null(index.Find("sk-acme-3"));
        Assert.Null(index.Find(""));
        Assert.Null(index.Find(new string('x', 5000)));
    }

    [Theory]
    [InlineData("Bearer sk-1", "sk-1")]
    [InlineData("bearer   sk-1  ", "sk-1")]
    [InlineData("Basic abc", "")]
    [InlineData("Bearer ", "")]
    [InlineData("sk-1", "")]
    public void BearerToken_ExtractsTheKey(string header, string expected)
    {
        Assert.Equal(expected, ApiKeyIndex.BearerToken(header).ToString());
    }

    [Fact]
    public void HashKey_IsLowerHexSha256()
    {
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("sk-demo-key"u8)), ApiKeyIndex.HashKey("sk-demo-key"));
        Assert.Equal(64, ApiKeyIndex.HashKey("x").Length);
    }

    internal static TenantModel Tenant(string name, params string[] keys) => new(
        name,
        "default",
        1,
        [.. keys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k)).ToImmutableArray())],
        ["*"],
        0,
        0,
        0);
}
