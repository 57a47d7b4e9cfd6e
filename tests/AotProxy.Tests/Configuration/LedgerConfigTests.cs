using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

public sealed class LedgerConfigTests
{
    [Fact]
    public void Ledger_Defaults_ResolveNextToTheConfigFile()
    {
        var loaded = ConfigLoader.Parse("", "/etc/aotproxy/aotproxy.toml", 1, TimeProvider.System);

        Assert.True(loaded.IsValid, loaded.ToString());
        var ledger = loaded.Snapshot.Ledger;
        Assert.Equal("/etc/aotproxy/aotproxy-usage.db", ledger.Path);
        Assert.Equal(TimeSpan.FromSeconds(1), ledger.BatchInterval);
        Assert.Equal(500, ledger.BatchSize);
        Assert.Equal(65_536, ledger.QueueCapacity);
    }

    [Fact]
    public void Ledger_WithoutAConfigFile_ResolvesInTheWorkingDirectory()
    {
        var snapshot = TestConfig.Valid("[ledger]\npath = \"data/usage.db\"\n");

        Assert.Equal(Path.Combine(Directory.GetCurrentDirectory(), "data", "usage.db"), snapshot.Ledger.Path);
    }

    [Fact]
    public void Ledger_EmptyPath_TurnsItOff()
    {
        var snapshot = TestConfig.Valid("[ledger]\npath = \"\"\n");

        Assert.False(snapshot.Ledger.Enabled);
    }

    [Fact]
    public void Ledger_AbsolutePath_IsKept()
    {
        var loaded = ConfigLoader.Parse("[ledger]\npath = \"/var/lib/aotproxy/usage.db\"\nbatch_interval = \"250ms\"\n", "/etc/aotproxy/aotproxy.toml", 1, TimeProvider.System);

        Assert.Equal("/var/lib/aotproxy/usage.db", loaded.Snapshot!.Ledger.Path);
        Assert.Equal(TimeSpan.FromMilliseconds(250), loaded.Snapshot.Ledger.BatchInterval);
    }

    [Theory]
    [InlineData("batch_size = 0", "ledger.batch_size", 3)]
    [InlineData("queue_capacity = 100", "ledger.queue_capacity", 3)]
    [InlineData("batch_interval = \"2m\"", "ledger.batch_interval", 3)]
    [InlineData("batch_interval = \"soon\"", "ledger.batch_interval", 3)]
    [InlineData("path = \"logs/\"", "ledger.path", 3)]
    [InlineData("batch = 5", "ledger.batch", 3)]
    public void Ledger_InvalidValue_IsRejectedWithItsKeyAndLine(string line, string key, int lineNumber)
    {
        var error = TestConfig.SingleError("# usage\n[ledger]\n" + line + "\n");

        Assert.Equal(key, error.Key);
        Assert.Equal(lineNumber, error.Line);
    }
}
