namespace AotProxy.Configuration;

// The values [[classes]].mode accepts.
internal static class ClassModes
{
    public const string Strict = "strict";
    public const string AtLeast = "atleast";
}
