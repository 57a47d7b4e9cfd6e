namespace AotProxy.Load.Profiles;

// One problem in a profile: its 1-based line (0 when it has none) and the key it is about.
internal sealed record ProfileError(int Line, string Key, string Message)
{
    public override string ToString() => (Line, Key.Length) switch
    {
        (> 0, > 0) => $"line {Line}: {Key}: {Message}",
        (> 0, _) => $"line {Line}: {Message}",
        (_, > 0) => $"{Key}: {Message}",
        _ => Message,
    };
}
