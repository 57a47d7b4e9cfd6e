using AotProxy.Configuration;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Packaging;

// No Docker engine runs here, so the image cannot be built in CI: these checks keep what can be
// checked without one honest.
public class PackagingTests
{
    private static readonly string Dockerfile = File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "Dockerfile"));
    private static readonly string CiRun = File.ReadAllText(Path.Combine(Fixtures.RepoRoot, ".ci", "run"));

    [Fact]
    public void Dockerfile_PublishesWithTheSameCommandAsCi()
    {
        var publish = CiRun.Split('\n').Single(l => l.StartsWith("dotnet publish ", StringComparison.Ordinal));
        var command = publish[..publish.IndexOf(" 2>&1", StringComparison.Ordinal)];
        Assert.Contains("RUN " + command + "\n", Dockerfile, StringComparison.Ordinal);
    }

    [Fact]
    public void Dockerfile_FinalStageIsChiseledAndNonRoot()
    {
        var final = Dockerfile[Dockerfile.LastIndexOf("FROM ", StringComparison.Ordinal)..];
        Assert.Contains("runtime-deps:10.0-noble-chiseled", final, StringComparison.Ordinal);
        Assert.Contains("USER 1654", final, StringComparison.Ordinal);
        Assert.DoesNotContain("USER root", final, StringComparison.Ordinal);
        Assert.Contains("VOLUME [\"/etc/aotproxy\", \"/var/lib/aotproxy\"]", final, StringComparison.Ordinal);
    }

    [Fact]
    public void Dockerfile_ShipsTheSqliteLibraryNextToTheBinaryAndAWritableLedgerDirectory()
    {
        var final = Dockerfile[Dockerfile.LastIndexOf("FROM ", StringComparison.Ordinal)..];
        Assert.Contains("COPY --from=build /src/artifacts/aot/libe_sqlite3.so /app/libe_sqlite3.so\n", final, StringComparison.Ordinal);
        Assert.Contains("--chown=1654:1654", final, StringComparison.Ordinal);
        Assert.Contains("/var/lib/aotproxy\n", final, StringComparison.Ordinal);

        var container = ConfigLoader.LoadFile(Path.Combine(Fixtures.RepoRoot, "configs", "container.toml"), 1, TimeProvider.System);
        Assert.True(container.IsValid, string.Join("\n", container.Errors));
        Assert.Equal("/var/lib/aotproxy/usage.db", container.Snapshot!.Ledger.Path);
    }

    [Fact]
    public void ContainerConfig_IsValidAndListensOnAllInterfaces()
    {
        var loaded = ConfigLoader.LoadFile(Path.Combine(Fixtures.RepoRoot, "configs", "container.toml"), 1, TimeProvider.System);
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Errors));
        Assert.Equal(System.Net.IPAddress.Any, loaded.Snapshot!.Server.Listen.Address);
    }

    [Fact]
    public void Readme_StartsWithTheDemoAndTheTestCommandThatCiRuns()
    {
        var readme = File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "README.md"));
        var head = readme[..Math.Min(readme.Length, 1200)];
        Assert.Contains("dotnet run --project src/AotProxy -- demo", head, StringComparison.Ordinal);
        Assert.Contains("dotnet test AotProxy.sln", head, StringComparison.Ordinal);
        Assert.Contains("\ndotnet test AotProxy.sln 2>&1 | tee", CiRun, StringComparison.Ordinal);
    }
}
