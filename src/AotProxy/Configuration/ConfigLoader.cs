using System.Reflection;
using AotProxy.Identity;
using Tomlyn;

namespace AotProxy.Configuration;

// Text -> GatewaySnapshot, in five steps, each of which can only fail with ConfigErrors:
// 1. syntax (one scan of Tomlyn's lexer, TomlKeyMap; the first syntax error, with its line),
// 2. shape of every top-level table of GatewayConfig ([server] vs [[workers]]; all of them at
//    once), which Tomlyn's binder would report one at a time and in its own words,
// 3. binding to the Config records (type errors; Tomlyn stops at the first), after regrouping
//    reopened tables (ContiguousToml),
// 4. reading what the config names outside itself (the environment, the JWKS file: ConfigInputs),
// 5. validation into the Model (every problem at once).
internal static class ConfigLoader
{
    public const string DemoResourceName = "demo.toml";

    public static ConfigLoadResult LoadFile(string path, long revision, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            return ConfigLoadResult.Failure(new ConfigError(0, "", $"cannot read {path}: it is a directory, not a file"));
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            // Own words for the common cases: the AOT binary is built with UseSystemResourceKeys,
            // so the runtime's messages are resource keys ("IO_FileNotFound_FileName").
            var reason = ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => "no such file",
                UnauthorizedAccessException => "permission denied",
                _ => ex.Message,
            };
            return ConfigLoadResult.Failure(new ConfigError(0, "", $"cannot read {path}: {reason}"));
        }

        // An editor that writes in place truncates first: a reload in that instant would read an
        // empty file, which is valid TOML and would apply "no workers, no tenants".
        if (string.IsNullOrWhiteSpace(text))
        {
            return ConfigLoadResult.Failure(new ConfigError(0, "", $"{path} is empty (a write in progress?); an empty config would have no workers and no tenants"));
        }

        return Parse(text, Path.GetFullPath(path), revision, time);
    }

    public static ConfigLoadResult Parse(string toml, string source, long revision, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(toml);
        ArgumentNullException.ThrowIfNull(time);

        var map = TomlKeyMap.Build(toml);
        if (TomlDiagnostics.FirstSyntaxError(toml, map) is { } syntax)
        {
            return ConfigLoadResult.Failure(new ConfigError(syntax.Line, "", syntax.Message));
        }

        var shapeErrors = CheckShapes(map);
        if (shapeErrors.Count > 0)
        {
            return ConfigLoadResult.Failure(shapeErrors);
        }

        var contiguous = ContiguousToml.Create(toml, map.Headers);
        GatewayConfig config;
        try
        {
            config = TomlSerializer.Deserialize(contiguous.Text, ConfigTomlContext.Default.GatewayConfig) ?? new GatewayConfig();
        }
        catch (TomlException ex)
        {
            var line = contiguous.OriginalLine(ex.Line ?? 0);
            return ConfigLoadResult.Failure(new ConfigError(line, map.KeyAt(line, ex.Column ?? 0), TomlDiagnostics.Describe(ex.Message)));
        }

        return ConfigValidator.Validate(config, ReadInputs(config.Jwt, source), map, source, revision, time.GetUtcNow(), ConfigDigest.Of(toml, map));
    }

    // The config `aotproxy demo` starts from (configs/demo.toml, carried in the binary).
    public static string ReadEmbedded(string logicalName)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(logicalName)
            ?? throw new InvalidOperationException($"Resource {logicalName} is not embedded in the binary.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static List<ConfigError> CheckShapes(TomlKeyMap map) =>
        [.. TomlDiagnostics.ShapeErrors(map, ConfigSections.Tables, ConfigSections.TableArrays).Select(e => new ConfigError(e.Line, e.Key, e.Message))];

    // The HS256 secret from the environment and the JWKS file's keys, read once per load (the
    // validator only checks them).
    private static ConfigInputs ReadInputs(JwtConfig jwt, string source)
    {
        var secret = jwt.Hs256SecretEnv.Length > 0 ? Environment.GetEnvironmentVariable(jwt.Hs256SecretEnv) : null;
        if (jwt.JwksFile.Length == 0)
        {
            return ConfigInputs.None with { Hs256Secret = secret };
        }

        // Relative to the config file, so that a config and its key set can move together.
        var directory = Path.IsPathRooted(source) ? Path.GetDirectoryName(source) : null;
        var path = Path.GetFullPath(jwt.JwksFile, directory ?? Environment.CurrentDirectory);
        return JwksReader.TryRead(path, out var keys, out var error)
            ? new ConfigInputs(secret, keys, null)
            : new ConfigInputs(secret, [], error);
    }

}
