namespace AotProxy.Configuration;

// Path is absolute, or "" when the ledger is off.
internal sealed record LedgerModel(string Path, TimeSpan BatchInterval, int BatchSize, int QueueCapacity)
{
    public const string DefaultFileName = "aotproxy-usage.db";

    // Hand-built snapshots (tests) write no ledger; a config file gets one by default.
    public static LedgerModel Off { get; } = new(string.Empty, TimeSpan.FromSeconds(1), 500, 65_536);

    public bool Enabled => Path.Length > 0;
}
