using System.Text.Json;

namespace AotProxy.Routing;

// Enum values as the admin JSON and the logs spell them: HalfOpen -> half_open.
internal static class EnumNames
{
    public static string Snake<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());
}
