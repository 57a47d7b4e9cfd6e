using AotProxy.Configuration;
using AotProxy.Identity;

namespace AotProxy.Tests.Configuration;

public sealed class AdminTokenConfigTests
{
    [Fact]
    public void AdminTokens_WithTheServersToken_AreDefaultPlusEachEntryWithItsRole()
    {
        var snapshot = TestConfig.Valid($"""
            [server]
            admin_token_sha256 = "{ApiKeyIndex.HashKey("root")}"

            [[admin_tokens]]
            id = "grafana"
            sha256 = "{ApiKeyIndex.HashKey("viewer")}"
            role = "read"

            [[admin_tokens]]
            id = "ops"
            sha256 = "{ApiKeyIndex.HashKey("ops")}"
            """);

        Assert.Equal(["default", "grafana", "ops"], snapshot.AdminTokens.Select(t => t.Id));
        Assert.Equal([AdminRole.Admin, AdminRole.Read, AdminRole.Admin], snapshot.AdminTokens.Select(t => t.Role));
        Assert.Equal(Convert.FromHexString(ApiKeyIndex.HashKey("viewer")), snapshot.AdminTokens[1].Sha256.ToArray());
    }

    [Fact]
    public void AdminTokens_NoneConfigured_LeaveTheApiOpen()
    {
        Assert.Empty(TestConfig.Valid("").AdminTokens);
    }

    [Theory]
    [InlineData("id = \"x\"\nsha256 = \"{0}\"\nrole = \"write\"", "admin_tokens[0].role")]
    [InlineData("id = \"\"\nsha256 = \"{0}\"", "admin_tokens[0].id")]
    [InlineData("id = \"default\"\nsha256 = \"{0}\"", "admin_tokens[0].id")]
    [InlineData("id = \"x\"\nsha256 = \"abc\"", "admin_tokens[0].sha256")]
    [InlineData("id = \"x\"\nsha256 = \"{0}\"\nrol = \"read\"", "admin_tokens[0].rol")]
    public void AdminTokens_BadEntry_IsRejectedAtItsKey(string body, string key)
    {
        var error = TestConfig.SingleError("[[admin_tokens]]\n" + body.Replace("{0}", ApiKeyIndex.HashKey("t"), StringComparison.Ordinal) + "\n");

        Assert.Equal(key, error.Key);
    }

    [Fact]
    public void AdminTokens_TheSameTokenTwice_IsRejected()
    {
        var hash = ApiKeyIndex.HashKey("t");
        var error = TestConfig.SingleError($"[[admin_tokens]]\nid = \"a\"\nsha256 = \"{hash}\"\n\n[[admin_tokens]]\nid = \"b\"\nsha256 = \"{hash}\"\nrole = \"read\"\n");

        Assert.Equal("admin_tokens[1].sha256", error.Key);
        Assert.Contains("\"a\"", error.Message, StringComparison.Ordinal);
    }
}
