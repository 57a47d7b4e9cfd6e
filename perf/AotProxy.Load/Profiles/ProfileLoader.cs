using AotProxy.Configuration;
using Tomlyn;

namespace AotProxy.Load.Profiles;

// Text -> LoadProfile in the same four steps as the gateway's ConfigLoader, each of which fails
// only with ProfileErrors that carry a line: syntax, shape of the top-level tables, binding
// (after ContiguousToml regroups reopened tables), validation (every problem at once).
internal static class ProfileLoader
{
    private static readonly string[] Tables = ["scenario", "thresholds"];
    private static readonly string[] TableArrays = ["load", "mix"];

    public static ProfileLoadResult LoadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return ProfileLoadResult.Failure(new ProfileError(0, "", $"cannot read {path}: {ex.Message}"));
        }

        return Parse(text, Path.GetFileNameWithoutExtension(path), path);
    }

    // name: the profile's name in reports and file names (the file name without .toml).
    public static ProfileLoadResult Parse(string toml, string name, string source)
    {
        ArgumentNullException.ThrowIfNull(toml);
        var map = TomlKeyMap.Build(toml);
        if (TomlDiagnostics.FirstSyntaxError(toml, map) is { } syntax)
        {
            return ProfileLoadResult.Failure(new ProfileError(syntax.Line, "", syntax.Message));
        }

        var shapeErrors = CheckShapes(map);
        if (shapeErrors.Count > 0)
        {
            return new ProfileLoadResult(null, shapeErrors);
        }

        var contiguous = ContiguousToml.Create(toml, map.Headers);
        ProfileConfig config;
        try
        {
            config = TomlSerializer.Deserialize(contiguous.Text, ProfileTomlContext.Default.ProfileConfig) ?? new ProfileConfig();
        }
        catch (TomlException ex)
        {
            var line = contiguous.OriginalLine(ex.Line ?? 0);
            return ProfileLoadResult.Failure(new ProfileError(line, map.KeyAt(line, ex.Column ?? 0), TomlDiagnostics.Describe(ex.Message)));
        }

        return ProfileValidator.Validate(config, map, name);
    }

    private static List<ProfileError> CheckShapes(TomlKeyMap map) =>
        [.. TomlDiagnostics.ShapeErrors(map, Tables, TableArrays).Select(e => new ProfileError(e.Line, e.Key, e.Message))];

}
