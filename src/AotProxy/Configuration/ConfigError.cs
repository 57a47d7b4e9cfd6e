namespace AotProxy.Configuration;

// One problem in a config file. Line is 1-based, 0 when unknown (e.g. the file could not be read);
// Key is the full key path ("server.listen", "workers[1].url"), "" when the problem has no key.
internal sealed record ConfigError(int Line, string Key, string Message)
{
    public override string ToString() => (Line, Key) switch
    {
        ( > 0, "") => $"line {Line}: {Message}",
        ( > 0, _) => $"line {Line}: {Key}: {Message}",
        (_, "") => Message,
        _ => $"{Key}: {Message}",
    };
}
