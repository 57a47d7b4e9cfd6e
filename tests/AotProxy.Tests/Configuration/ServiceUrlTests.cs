using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

public sealed class ServiceUrlTests
{
    [Theory]
    [InlineData("redis://app:hunter2@db:6379/1", "redis://***@db:6379/1")]
    [InlineData("postgres://app:hunter2@db/ledger", "postgres://***@db/ledger")]
    [InlineData("postgres://db/ledger", "postgres://db/ledger")]
    [InlineData("not a url @ all", "not a url @ all")]
    public void Redacted_HidesTheCredentials(string url, string shown) => Assert.Equal(shown, ServiceUrl.Redacted(url));

    [Theory]
    [InlineData("redis://app:pw%40x@db", "app", "pw@x")]
    [InlineData("postgres://app@db/x", "app", null)]
    [InlineData("postgres://:pw@db/x", null, "pw")]
    [InlineData("postgres://db/x", null, null)]
    public void Credentials_AreUnescaped_AndAnEmptyUserIsNone(string url, string? user, string? password) =>
        Assert.Equal((user, password), ServiceUrl.Credentials(new Uri(url)));

    // Both parsers' errors go through it: the password of a URL that does not parse is not shown.
    [Fact]
    public void InvalidUrls_InErrors_ShowNoPassword()
    {
        var redis = TestConfig.SingleError("[cluster]\nredis_url = \"redis://app:hunter2@db/99\"\n");
        var postgres = TestConfig.SingleError("[ledger]\npath = \"/tmp/l.db\"\n[store]\npostgres_url = \"postgres://app:hunter2@db\"\n");

        Assert.DoesNotContain("hunter2", redis.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", postgres.Message, StringComparison.Ordinal);
        Assert.Contains("***@db", redis.Message, StringComparison.Ordinal);
        Assert.Contains("***@db", postgres.Message, StringComparison.Ordinal);
    }
}
