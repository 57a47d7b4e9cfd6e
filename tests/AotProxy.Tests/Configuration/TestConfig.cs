using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

internal static class TestConfig
{
    public static readonly DateTimeOffset Now = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static ConfigLoadResult Load(string toml, long revision = 1) =>
        ConfigLoader.Parse(toml, "test.toml", revision, new FakeTimeProvider(Now));

    public static GatewaySnapshot Valid(string toml)
    {
        var result = Load(toml);
        Assert.True(result.IsValid, result.ToString());
        return result.Snapshot;
    }

    public static ConfigError SingleError(string toml)
    {
        var result = Load(toml);
        Assert.False(result.IsValid, "expected the config to be rejected");
        return Assert.Single(result.Errors);
    }

    // The repository root: walk up from the test binaries to the directory holding AotProxy.sln.
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AotProxy.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"AotProxy.sln not found above {AppContext.BaseDirectory}");
    }

    // Polls instead of sleeping a fixed time: fast when the condition comes early, bounded when it never does.
    public static Task<bool> WaitUntil(Func<bool> condition, TimeSpan? timeout = null) =>
        WaitUntil(() => Task.FromResult(condition()), timeout);

    // The same for a condition that awaits (a store's answer): a blocking call there would hold a
    // thread-pool thread the answer itself needs on a loaded 2-core machine (a sync Redis call
    // timed out so in CI).
    public static async Task<bool> WaitUntil(Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(20);
        }

        return await condition();
    }
}
