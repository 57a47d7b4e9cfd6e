namespace AotProxy.Configuration;

// A key's path as ConfigError names it ("tenants[7].rpm", "tenants[7].api_key_sha256[0]"),
// formatted only when an error needs it: the validator checks ~10 keys of each tenant, and
// formatting every path up front cost 100,000 tenants ~100 MB of strings that no valid file uses.
internal readonly record struct KeyPath(string Table, string Key, int Index = -1)
{
    public static implicit operator KeyPath(string path) => new("", path);

    public override string ToString() =>
        (Table.Length == 0 ? Key : $"{Table}.{Key}") + (Index < 0 ? "" : $"[{Index}]");
}
