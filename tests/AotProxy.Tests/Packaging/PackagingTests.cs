using System.Globalization;
using System.Net;
using System.Xml.Linq;
using AotProxy.Configuration;

namespace AotProxy.Tests.Packaging;

// No Docker engine runs here, so the image cannot be built in CI: these checks keep what can be
// checked without one honest. Each file is parsed for what it means (the Dockerfile into stages
// and instructions, shell lines into words, project files as XML, the container config by the
// gateway's own loader), and the files are checked against each other: a comment that mentions
// a command, or a flag moved within a line, neither passes nor fails a check by accident.
public class PackagingTests
{
    private static readonly DockerfileModel Dockerfile = DockerfileModel.Parse(Read("Dockerfile"));
    private static readonly List<string[]> CiCommands = ShellWords.Commands(Read(".ci/run"));

    [Fact]
    public void Dockerfile_PublishesWithTheSameCommandAsCi()
    {
        var ci = Assert.Single(CiCommands, IsPublish);

        Assert.Equal(ci, BuildStagePublish());
    }

    [Fact]
    public void Dockerfile_CopiesTheBinaryThePublishWrites_AndTheSqliteLibraryNextToIt()
    {
        var build = Dockerfile.Stage("build");
        var publish = BuildStagePublish();
        var project = XDocument.Load(Path.Combine(Fixtures.RepoRoot, Assert.Single(publish, w => w.EndsWith(".csproj", StringComparison.Ordinal))));
        Assert.Equal("true", Property(project, "PublishAot"));
        var output = $"{build.WorkDir}/{publish[Array.IndexOf(publish, "-o") + 1]}";

        var entrypoint = Assert.Single(Dockerfile.Final.Single("ENTRYPOINT").ExecForm!);
        var binary = Assert.Single(Dockerfile.Final.All("COPY"), c => c.Operands[^1] == entrypoint);
        Assert.Equal(("build", $"{output}/{Property(project, "AssemblyName")}"), (binary.Flag("from"), Assert.Single(binary.Operands[..^1])));

        // Microsoft.Data.Sqlite loads e_sqlite3 from the binary's directory in a native build.
        Assert.Contains("Microsoft.Data.Sqlite", project.Descendants("PackageReference").Select(r => (string?)r.Attribute("Include")));
        var sqlite = Assert.Single(Dockerfile.Final.All("COPY"), c => c.Operands[0] == $"{output}/libe_sqlite3.so");
        Assert.Equal(("build", $"{Path.GetDirectoryName(entrypoint)}/libe_sqlite3.so"), (sqlite.Flag("from"), sqlite.Operands[^1]));
    }

    [Fact]
    public void Dockerfile_FinalStageIsChiseledRuntimeDepsOfTheTargetFramework_AndNonRoot()
    {
        // net10.0 -> images tagged 10.0: the SDK that builds, the runtime-deps that runs.
        var version = Property(XDocument.Load(Path.Combine(Fixtures.RepoRoot, "Directory.Build.props")), "TargetFramework")["net".Length..];
        Assert.Equal(("mcr.microsoft.com/dotnet/sdk", version), Dockerfile.Stage("build").ImageParts);
        var (repository, tag) = Dockerfile.Final.ImageParts;
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps", repository);
        Assert.StartsWith(version + "-", tag, StringComparison.Ordinal);
        Assert.EndsWith("-chiseled", tag, StringComparison.Ordinal);

        // A numeric uid: Kubernetes' runAsNonRoot can only verify a number.
        var users = Dockerfile.Final.All("USER").Select(u => u.Arguments.Split(':')[0]).ToList();
        Assert.NotEmpty(users);
        Assert.All(users, u => Assert.True(int.TryParse(u, NumberStyles.None, CultureInfo.InvariantCulture, out var uid) && uid != 0, $"USER {u} is not a non-root uid"));
    }

    [Fact]
    public void Dockerfile_GivesTheLedgerAWritableVolume_AndTheConfigAVolumeAtTheCommandsPath()
    {
        var build = Dockerfile.Stage("build");
        var final = Dockerfile.Final;
        var volumes = final.Single("VOLUME").ExecForm!;

        // The ledger's directory: a volume, owned by the user the image runs as, made in the build
        // stage (the chiseled image has no shell to mkdir in).
        var ledger = Path.GetDirectoryName(LoadContainerConfig().Snapshot!.Ledger.Path)!;
        Assert.Contains(ledger, volumes);
        var ledgerCopy = Assert.Single(final.All("COPY"), c => c.Operands[^1] == ledger);
        Assert.Equal(("build", final.All("USER").Last().Arguments), (ledgerCopy.Flag("from"), ledgerCopy.Flag("chown")));
        var made = build.All("RUN").SelectMany(r => ShellWords.Commands(r.Arguments)).Where(w => w is ["mkdir", "-p", ..]).SelectMany(w => w[2..]);
        Assert.Contains(Assert.Single(ledgerCopy.Operands[..^1]), made);

        // The config: the command reads it where configs/container.toml is copied, in a volume.
        var command = final.Single("CMD").ExecForm!;
        Assert.Equal("serve", command[0]);
        var config = command[Array.IndexOf(command, "--config") + 1];
        Assert.True(Path.IsPathRooted(config), config);
        var configCopy = Assert.Single(final.All("COPY"), c => c.Operands[^1] == config);
        Assert.Null(configCopy.Flag("from"));
        Assert.Equal("configs/container.toml", Assert.Single(configCopy.Operands[..^1]));
        Assert.Contains(Path.GetDirectoryName(config)!, volumes);
    }

    [Fact]
    public void ContainerConfig_IsValid_ListensOnAllInterfaces_OnThePortsTheImageExposes()
    {
        var server = LoadContainerConfig().Snapshot!.Server;

        Assert.Equal((IPAddress.Any, IPAddress.Any), (server.Listen.Address, server.AdminListen.Address));
        string[] ports = [.. new[] { server.Listen.Port, server.AdminListen.Port }.Select(p => p.ToString(CultureInfo.InvariantCulture))];
        Assert.Equal(ports, Dockerfile.Final.Single("EXPOSE").Words);
    }

    [Fact]
    public void Readme_StartsWithTheDemoAndTheTestCommandThatCiRuns()
    {
        // The README's first code block, before its first section: its commands, comments aside.
        var readme = Read("README.md").Split('\n');
        var open = Array.FindIndex(readme, l => l.StartsWith("```", StringComparison.Ordinal));
        Assert.InRange(open, 0, Array.FindIndex(readme, l => l.StartsWith("## ", StringComparison.Ordinal)));
        var close = Array.FindIndex(readme, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        var commands = ShellWords.Commands(string.Join('\n', readme[(open + 1)..close]));

        Assert.Equal([["dotnet", "run", "--project", "src/AotProxy", "--", "demo"], ["tests/run.sh"]], commands);
        var project = XDocument.Load(Directory.GetFiles(Path.Combine(Fixtures.RepoRoot, commands[0][3]), "*.csproj").Single());
        Assert.Equal("Exe", Property(project, "OutputType"));
        Assert.Single(CiCommands, w => w.SequenceEqual(commands[1]));
    }

    [Fact]
    public void TestScript_InstallsRedisAndPostgres_ThenRunsEveryTest()
    {
        var script = ShellWords.Commands(Read("tests/run.sh"));

        // The cluster tests start their own redis-server (tests/Shared/RedisServer.cs), the shared
        // ledger's their own postgres (PostgresServer.cs); CI runs this script on a machine with
        // only the .NET SDK.
        Assert.Contains(script, w => w.Contains("apt-get") && w.Contains("install") && w.Contains("redis-server"));
        Assert.Contains(script, w => w.Contains("apt-get") && w.Contains("install") && w.Contains("postgresql"));
        Assert.Single(script, w => w is ["dotnet", "test", "AotProxy.sln", ..]);
        if (!OperatingSystem.IsWindows())
        {
            Assert.True(File.GetUnixFileMode(Path.Combine(Fixtures.RepoRoot, "tests", "run.sh")).HasFlag(UnixFileMode.UserExecute), "tests/run.sh is executable");
        }
    }

    private static string Read(string relativePath) => File.ReadAllText(Path.Combine(Fixtures.RepoRoot, relativePath));

    private static bool IsPublish(string[] words) => words is ["dotnet", "publish", ..];

    private static string[] BuildStagePublish() =>
        Assert.Single(Dockerfile.Stage("build").All("RUN").SelectMany(r => ShellWords.Commands(r.Arguments)), IsPublish);

    // An MSBuild property set once in the project file.
    private static string Property(XDocument project, string name) =>
        Assert.Single(project.Root!.Elements("PropertyGroup").Elements(name)).Value.Trim();

    private static ConfigLoadResult LoadContainerConfig()
    {
        var loaded = ConfigLoader.LoadFile(Path.Combine(Fixtures.RepoRoot, "configs", "container.toml"), 1, TimeProvider.System);
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Errors));
        return loaded;
    }
}
