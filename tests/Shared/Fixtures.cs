namespace AotProxy.Testing;

// The real captures in ../shared/fixtures (beside the repository, as in CI), read unchanged.
internal static class Fixtures
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Directory { get; } = Path.Combine(RepoRoot, "..", "shared", "fixtures");

    public static byte[] Bytes(string relativePath) => File.ReadAllBytes(Path.Combine(Directory, relativePath));

    public static string Text(string relativePath) => File.ReadAllText(Path.Combine(Directory, relativePath));

    // The repository's own vLLM API fixtures (tests/fixtures/vllm-api, SOURCES.md cites each).
    public static byte[] ApiBytes(string name) => File.ReadAllBytes(Path.Combine(RepoRoot, "tests", "fixtures", "vllm-api", name));

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AotProxy.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("AotProxy.sln not found above " + AppContext.BaseDirectory);
    }
}
