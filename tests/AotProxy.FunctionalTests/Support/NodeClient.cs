using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// One run of a script in Node/ that drives an official npm client (tests/run.sh installs them
// with npm ci): its last output line, one JSON object saying what the client returned or raised.
internal static class NodeClient
{
    public static async Task<JsonElement> RunAsync(string script, string package, params string[] arguments)
    {
        var folder = Path.Combine(Fixtures.RepoRoot, "tests", "AotProxy.FunctionalTests", "Node");
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", package)), $"the {package} npm package is missing: run tests/run.sh (npm ci in {folder})");
        var run = await ToolRun.RunAsync("node", [Path.Combine(folder, script), .. arguments], workingDirectory: folder);
        Assert.True(run.ExitCode == 0, run.Errors);
        using var json = JsonDocument.Parse(run.Output.Trim().Split('\n')[^1]);
        return json.RootElement.Clone();
    }
}
