using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// YAML read by PyYAML (Debian's python3-yaml: the project takes no YAML package) and handed over
// as JSON: every document of a stream (kubectl kustomize prints several), anchors and merge keys
// resolved.
internal static class Yaml
{
    private const string ToJson = "import sys, json, yaml; json.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout)";

    public static async Task<(JsonElement[] Documents, string? Error)> ParseAllAsync(string text)
    {
        var run = await ToolRun.RunAsync("python3", ["-c", ToJson], input: text);
        if (run.ExitCode != 0)
        {
            Assert.False(run.Errors.Contains("No module named 'yaml'", StringComparison.Ordinal), "python3 has no yaml module; tests/run.sh installs python3-yaml");
            return ([], run.Errors.Trim());
        }

        using var document = JsonDocument.Parse(run.Output);
        return ([.. document.RootElement.EnumerateArray().Where(d => d.ValueKind != JsonValueKind.Null).Select(d => d.Clone())], null);
    }
}
