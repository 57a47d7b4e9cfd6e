namespace AotProxy.Load.Profiles;

// One problem in a profile: its 1-based line (0 when it has none) and the key it is about.
internal sealed record ProfileError(int Line, string Key, string Message)
{
    public override string ToString() => (Line > 0, Key.Length > 0) switch
    {
        (true, true) => $"line {Line}: {Key}: {Message}",
        (true, false) => $"line {Line}: {Message}",
        (false, true) => $"{Key}: {Message}",
        _ => Message,
    };
}
