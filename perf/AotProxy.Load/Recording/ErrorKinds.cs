namespace AotProxy.Load.Recording;

internal static class ErrorKinds
{
    public const string DroppedDescription = "dropped: client saturated";

    public static string Name(ErrorKind kind) => kind switch
    {
        ErrorKind.Connect => "connect",
        ErrorKind.Timeout => "timeout",
        ErrorKind.HttpStatus => "http_status",
        ErrorKind.Protocol => "protocol",
        ErrorKind.Io => "io",
        ErrorKind.Dropped => "dropped",
        _ => "other",
    };
}
