using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Text.Json;

namespace AotProxy.Configuration;

// The top-level names of GatewayConfig and how each is written: a record is a [table], a list of
// records an [[array of tables]]. Read from GatewayConfig's own properties, named as its
// ConfigTomlContext names them (snake_case), so the loader's shape check knows every section,
// including one added later, instead of a hand-kept list that left five out.
internal static class ConfigSections
{
    static ConfigSections()
    {
        var (tables, arrays) = Of(typeof(GatewayConfig));
        Tables = tables;
        TableArrays = arrays;
    }

    public static ImmutableArray<string> Tables { get; }

    public static ImmutableArray<string> TableArrays { get; }

    private static (ImmutableArray<string> Tables, ImmutableArray<string> Arrays) Of(
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type config)
    {
        var tables = ImmutableArray.CreateBuilder<string>();
        var arrays = ImmutableArray.CreateBuilder<string>();
        foreach (var property in config.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var type = property.PropertyType;
            var name = JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>))
            {
                arrays.Add(name);
            }
            else if (type.IsClass && type != typeof(string) && !type.IsGenericType)
            {
                tables.Add(name); // the [TomlExtensionData] catch-all is a Dictionary<,>: not a section
            }
        }

        return (tables.ToImmutable(), arrays.ToImmutable());
    }
}
