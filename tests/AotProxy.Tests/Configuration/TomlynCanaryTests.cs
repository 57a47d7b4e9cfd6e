using AotProxy.Configuration;
using Tomlyn;

namespace AotProxy.Tests.Configuration;

// ContiguousToml exists only because Tomlyn's deserializer mishandles a table reopened after
// another one. These call Tomlyn alone, with the gateway's own source-generated context, on
// valid TOML that shows the bug: once an upgrade reads it right, they fail and say so. Each also
// reads the regrouped text, so "right" is known to be reachable and the canary can fire.
public class TomlynCanaryTests
{
    private const string Fixed = "Tomlyn fixed the reopened-table bug: remove ContiguousToml's workaround";

    [Fact]
    public void TableArrayContinuedAfterAnotherTable_IsRefusedAsADuplicateKey()
    {
        const string Toml = """
            [[workers]]
            name = "a"
            url = "http://a"
            [server]
            max_request_bytes = 1000
            [[workers]]
            name = "b"
            url = "http://b"
            """;
        static bool Right(GatewayConfig? config) =>
            config is not null && config.Workers.Select(w => w.Name).SequenceEqual(["a", "b"]) && config.Server.MaxRequestBytes == 1000;

        Assert.True(Right(Deserialize(Regrouped(Toml), out _)));

        var config = Deserialize(Toml, out var error);

        Assert.False(Right(config), Fixed);
        Assert.Equal("Duplicate key 'workers' was encountered.", error?.Message);
    }

    [Fact]
    public void SubTableOpenedAfterAnotherTable_ReplacesWhatItsParentRead()
    {
        // [server.tls] is not a gateway key: ConfigValidator reports it, from Server.Unknown.
        const string Toml = """
            [server]
            max_request_bytes = 1000
            [routing]
            strategy = "round_robin"
            [server.tls]
            cert = "x"
            """;
        static bool Right(GatewayConfig? config) =>
            config is not null && config.Server.MaxRequestBytes == 1000 && config.Server.Unknown?.ContainsKey("tls") == true;

        Assert.True(Right(Deserialize(Regrouped(Toml), out _)));

        var config = Deserialize(Toml, out var error);

        Assert.False(Right(config), Fixed);
        Assert.Null(error);
        Assert.Equal(new ServerConfig().MaxRequestBytes, config!.Server.MaxRequestBytes); // 1000 lost, the default back
        Assert.Equal("round_robin", config.Routing.Strategy);
    }

    private static GatewayConfig? Deserialize(string toml, out TomlException? error)
    {
        error = null;
        try
        {
            return TomlSerializer.Deserialize(toml, ConfigTomlContext.Default.GatewayConfig);
        }
        catch (TomlException ex)
        {
            error = ex;
            return null;
        }
    }

    private static string Regrouped(string toml) => ContiguousToml.Create(toml, TomlKeyMap.Build(toml).Headers).Text;
}
