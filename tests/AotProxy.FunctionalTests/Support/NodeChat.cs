using System.Globalization;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// One streamed chat through the official openai npm client (Node/stream-chat.mjs; tests/run.sh
// installs the package with npm ci): its one JSON line, {ok, text} or what the client raised.
internal static class NodeChat
{
    // header: one request header as "name=value", or null.
    public static async Task<JsonElement> StreamAsync(BinaryGateway gateway, int maxTokens, string key = TestGateway.Key, string? header = null)
    {
        var folder = Path.Combine(Fixtures.RepoRoot, "tests", "AotProxy.FunctionalTests", "Node");
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "openai")), "the openai npm package is missing: run tests/run.sh (npm ci in " + folder + ")");
        string[] arguments = [Path.Combine(folder, "stream-chat.mjs"), new Uri(gateway.Process.DataUri!, "v1").ToString(), key, TestGateway.Model, maxTokens.ToString(CultureInfo.InvariantCulture)];
        var run = await ToolRun.RunAsync("node", header is null ? arguments : [.. arguments, header], workingDirectory: folder);
        Assert.True(run.ExitCode == 0, run.Errors);
        using var json = JsonDocument.Parse(run.Output.Trim().Split('\n')[^1]);
        return json.RootElement.Clone();
    }
}
