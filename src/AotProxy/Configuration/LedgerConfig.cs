using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [ledger]
internal sealed record LedgerConfig
{
    // Relative to the config file's directory (the working directory for `aotproxy demo`, whose
    // config is embedded). "": no ledger.
    public string Path { get; init; } = LedgerModel.DefaultFileName;

    // 1 s: what a kill -9 may lose, at ~1 ms of SQLite commit per second.
    public string BatchInterval { get; init; } = "1s";

    // 500 rows commit in ~0.8 ms; a larger batch only delays rows at high request rates.
    public int BatchSize { get; init; } = 500;

    // 65,536 rows (~10 MB): a minute of stall at 1,000 requests/s before rows are dropped.
    public int QueueCapacity { get; init; } = 65_536;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
