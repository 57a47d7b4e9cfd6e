using System.Globalization;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// The official openai npm client's calls (Node/*.mjs; tests/run.sh installs the package with npm
// ci): one streamed chat (stream-chat.mjs), one models.retrieve (retrieve-model.mjs); each prints
// one JSON line, what it got or what the client raised.
internal static class NodeChat
{
    // header: one request header as "name=value", or null.
    public static Task<JsonElement> StreamAsync(BinaryGateway gateway, int maxTokens, string key = TestGateway.Key, string? header = null)
    {
        string[] arguments = [TestGateway.Model, maxTokens.ToString(CultureInfo.InvariantCulture)];
        return RunAsync(gateway, "stream-chat.mjs", key, header is null ? arguments : [.. arguments, header]);
    }

    // client.models.retrieve(id) (Node/retrieve-model.mjs).
    public static Task<JsonElement> RetrieveModelAsync(BinaryGateway gateway, string id, string key = TestGateway.Key) =>
        RunAsync(gateway, "retrieve-model.mjs", key, [id]);

    // A script of Node/ with the gateway's base URL and the key, then its own arguments.
    public static async Task<JsonElement> RunAsync(BinaryGateway gateway, string script, string key, string[] arguments)
    {
        var folder = Path.Combine(Fixtures.RepoRoot, "tests", "AotProxy.FunctionalTests", "Node");
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "openai")), "the openai npm package is missing: run tests/run.sh (npm ci in " + folder + ")");
        var run = await ToolRun.RunAsync("node", [Path.Combine(folder, script), new Uri(gateway.Process.DataUri!, "v1").ToString(), key, .. arguments], workingDirectory: folder);
        Assert.True(run.ExitCode == 0, run.Errors);
        using var json = JsonDocument.Parse(run.Output.Trim().Split('\n')[^1]);
        return json.RootElement.Clone();
    }
}
