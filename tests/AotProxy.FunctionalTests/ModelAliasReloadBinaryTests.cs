using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Aliases follow the config file through the real binary's watcher: an edit of [[models]] that
// adds an alias, retargets one or removes one holds from the next request after the reload; a
// broken edit (an alias of an alias) is rejected whole, and the aliases before it keep serving.
// Two simulated workers serve "served-a" and "served-b" and answer 404 for any other name.
public class ModelAliasReloadBinaryTests
{
    [Fact]
    public async Task AliasEdits_TakeEffectAfterTheReload_AndABrokenEditKeepsTheOldAliases()
    {
        await using var gateway = await BinaryGateway.StartTwoModelsAsync("served-a", "served-b", Alias("hot", "served-a"));
        Assert.Equal("served-a", await ServedAsync(gateway, "hot"));

        // Retarget: once reloaded, the alias goes to the new target only.
        await EditAsync(gateway, Alias("hot", "served-b"));
        await WaitForAsync(gateway, "hot", "served-b");

        // Add a second alias beside it.
        await EditAsync(gateway, Alias("hot", "served-b") + Alias("fresh", "served-a"));
        await WaitForAsync(gateway, "fresh", "served-a");
        Assert.Equal("served-b", await ServedAsync(gateway, "hot"));

        // Broken: hot names the alias fresh. Rejected (counted as an error), the old aliases stay.
        var errors = await ReloadsAsync(gateway, "error");
        await EditAsync(gateway, Alias("hot", "fresh") + Alias("fresh", "served-a"));
        await TestGateway.WaitUntilAsync(async () => await ReloadsAsync(gateway, "error") > errors, "the broken edit is rejected");
        Assert.Equal("served-b", await ServedAsync(gateway, "hot"));
        Assert.Equal("served-a", await ServedAsync(gateway, "fresh"));

        // Remove hot: a name nothing serves, 404 model_not_found; fresh still serves.
        await EditAsync(gateway, Alias("fresh", "served-a"));
        await WaitForAsync(gateway, "hot", "404 model_not_found");
        Assert.Equal("served-a", await ServedAsync(gateway, "fresh"));
    }

    private static string Alias(string name, string target) => $"""

        [[models]]
        name = "{name}"
        targets = ["{target}"]

        """;

    // The config as started with these [[models]] instead (they are its last sections).
    private static Task EditAsync(BinaryGateway gateway, string models) =>
        File.WriteAllTextAsync(gateway.ConfigPath, gateway.Toml[..gateway.Toml.IndexOf("\n[[models]]", StringComparison.Ordinal)] + models);

    private static Task WaitForAsync(BinaryGateway gateway, string model, string served) =>
        TestGateway.WaitUntilAsync(async () => await ServedAsync(gateway, model) == served, $"{model} is served by {served} after the reload");

    // The served model of a chat for `model` (also x-gateway-model), or "<status> <code>".
    private static async Task<string> ServedAsync(BinaryGateway gateway, string model)
    {
        using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", $$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hi"}],"max_tokens":2}"""));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return $"{(int)response.StatusCode} {json.RootElement.GetProperty("error").GetProperty("code").GetString()}";
        }

        var served = json.RootElement.GetProperty("model").GetString()!;
        Assert.Equal(served, Assert.Single(response.Headers.GetValues("x-gateway-model")));
        return served;
    }

    private static async Task<double> ReloadsAsync(BinaryGateway gateway, string result) =>
        MetricsText.Value(await gateway.Admin.GetStringAsync("/metrics"), "llm_gateway_config_reloads_total", $"result=\"{result}\"");
}
