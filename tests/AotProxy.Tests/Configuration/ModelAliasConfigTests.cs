using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

// [[models]] aliases: a public name for served models, with a max_tokens cap and a tenant list;
// and a served model's own capabilities and context_length.
public class ModelAliasConfigTests
{
    [Fact]
    public void Alias_KeepsItsTargetsCapAndTenants_AndATargetNoWorkerServesIsNoError()
    {
        var snapshot = TestConfig.Valid("""
            [[models]]
            name = "chat"
            targets = ["served-a", "not-served-yet"]
            max_tokens = 256
            tenants = ["acme"]

            [[models]]
            name = "served-a"
            capabilities = ["chat", "tools"]
            context_length = 8192
            """);

        var alias = snapshot.Models.Find("chat")!;
        Assert.True(alias.IsAlias);
        Assert.Equal(["served-a", "not-served-yet"], alias.Targets.ToArray());
        Assert.Equal(256, alias.MaxTokens);
        Assert.True(alias.AllowsTenant("acme"));
        Assert.False(alias.AllowsTenant("other"));
        var served = snapshot.Models.Find("served-a")!;
        Assert.False(served.IsAlias);
        Assert.True(served.AllowsTenant("anyone"));
        Assert.Equal(ModelCapabilities.Chat | ModelCapabilities.Tools, served.Capabilities);
        Assert.Equal(8192, served.ContextLength);
        Assert.Equal(["chat"], snapshot.Models.Aliases.Select(a => a.Name));
    }

    [Theory]
    [InlineData("[[models]]\nname = \"a\"\ntargets = [\"b\"]\n[[models]]\nname = \"b\"\ntargets = [\"c\"]\n", 3, "models[0].targets[0]", "an alias itself")]
    [InlineData("[[models]]\nname = \"a\"\ntargets = [\"auto\"]\n", 3, "models[0].targets[0]", "an alias itself")]
    [InlineData("[[models]]\nname = \"a\"\ntargets = [\"x\", \"x\"]\n", 3, "models[0].targets[1]", "listed twice")]
    [InlineData("[[models]]\nname = \"a\"\ntargets = [\"\"]\n", 3, "models[0].targets[0]", "must name a served model")]
    [InlineData("[[models]]\nname = \"auto\"\n", 2, "models[0].name", "gateway's own choice")]
    [InlineData("[[models]]\nname = \"a\"\nmax_tokens = -1\n", 3, "models[0].max_tokens", "0 (no cap) or more")]
    [InlineData("[[models]]\nname = \"a\"\ncontext_length = -5\n", 3, "models[0].context_length", "or more")]
    [InlineData("[[models]]\nname = \"a\"\ntenants = [\" \"]\n", 3, "models[0].tenants[0]", "must not be empty")]
    [InlineData("[[models]]\nname = \"a\"\ncapabilities = [\"telepathy\"]\n", 3, "models[0].capabilities[0]", "unknown capability \"telepathy\"")]
    [InlineData("[[models]]\nname = \"a\"\ntargets = [\"x\"]\ncapabilities = [\"tools\"]\n", 4, "models[0].capabilities", "not to an alias")]
    [InlineData("[[models]]\nname = \"a\"\ntarget = [\"x\"]\n", 3, "models[0].target", "unknown key")]
    public void BadEntry_IsRefusedWithItsKeyAndLine(string toml, int line, string key, string message)
    {
        var error = TestConfig.SingleError(toml);

        Assert.Equal((line, key), (error.Line, error.Key));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AliasNamedLikeAServedModel_IsRefused()
    {
        var error = TestConfig.SingleError("""
            [[workers]]
            name = "w"
            url = "http://127.0.0.1:8000"
            models = ["m"]

            [[models]]
            name = "m"
            targets = ["other"]
            """);

        Assert.Equal("models[0].name", error.Key);
        Assert.Contains("a worker serves a model of that name", error.Message, StringComparison.Ordinal);
    }
}
