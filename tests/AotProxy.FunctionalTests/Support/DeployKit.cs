using System.Globalization;
using System.Net;
using System.Text.Json;
using AotProxy.Configuration;

namespace AotProxy.FunctionalTests.Support;

// The deploy kit (deploy/) of one repository tree (the real one, or a copy a test broke on
// purpose), checked without a container engine or a cluster: what a container would run is run
// here, through the real binary. KubernetesKitCheck and ComposeKitCheck use it; each collects
// problems (what is wrong, and where) instead of stopping at the first, so that a test can
// assert that a broken copy fails for the reason it was broken.
internal sealed class DeployKit(string root, Uri admin, HttpClient http)
{
    // `aotproxy hash-key AdminToken`, run once per kit (the compose fleet has two gateways).
    private Task<(int ExitCode, string Output)>? _hashKey;

    // The token the checks render the configs with (the kit holds none): 64 hex digits, as
    // `openssl rand -hex 32` makes them.
    public string AdminToken { get; } = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public string Root => root;

    public string Path(params string[] parts) => System.IO.Path.Combine([root, .. parts]);

    // The Dockerfile's final ENTRYPOINT (exec form) and the uid of its last USER.
    public (string[] Entrypoint, int Uid) Image()
    {
        var lines = File.ReadAllLines(Path("Dockerfile"));
        var entrypoint = JsonSerializer.Deserialize<string[]>(lines.Last(l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal))["ENTRYPOINT ".Length..])!;
        var user = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..].Split(':')[0];
        return (entrypoint, int.Parse(user, NumberStyles.None, CultureInfo.InvariantCulture));
    }

    // A path on the admin plane is real when the running gateway does not answer it with 404
    // (/ready may be 503 before a worker is routable: it exists all the same).
    public async Task CheckAdminPathAsync(string where, string path, List<string> problems)
    {
        using var response = await http.GetAsync(new Uri(admin, path));
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            problems.Add($"{where}: {path} is not an endpoint of the admin plane (404)");
        }
    }

    public async Task<string> MetricsTextAsync() => await http.GetStringAsync(new Uri(admin, "/metrics"));

    // The config the gateway would read, through `aotproxy check-config` (exit 0), then loaded
    // for its values; its admin token's hash must be `aotproxy hash-key` of the token rendered in.
    public async Task<GatewaySnapshot?> CheckConfigAsync(string where, string file, List<string> problems)
    {
        if (!File.Exists(file))
        {
            problems.Add($"{where}: the config {file} was not written (no init container or service renders it)");
            return null;
        }

        var (exitCode, output) = await GatewayProcess.RunToEndAsync("check-config", file);
        if (exitCode != 0)
        {
            problems.Add($"{where}: aotproxy check-config exited {exitCode}: {output}");
            return null;
        }

        var loaded = ConfigLoader.LoadFile(file, 1, TimeProvider.System);
        Assert.True(loaded.IsValid, loaded.ToString());
        var snapshot = loaded.Snapshot!;
        _hashKey ??= GatewayProcess.RunToEndAsync("hash-key", AdminToken);
        var (_, hash) = await _hashKey;
        if (Convert.ToHexStringLower(snapshot.Server.AdminTokenSha256.AsSpan()) != hash.Trim())
        {
            problems.Add($"{where}: admin_token_sha256 is not `aotproxy hash-key` of the token rendered in");
        }

        return snapshot;
    }

    // The container's `simulate` arguments through the real binary, on a loopback port instead
    // of the container's: it must print its ready line (a bad flag exits 2 first).
    public async Task CheckSimulateAsync(string where, string[] args, List<string> problems)
    {
        var listen = Array.IndexOf(args, "--listen");
        if (args is not ["simulate", ..] || listen < 0 || listen + 1 >= args.Length)
        {
            problems.Add($"{where}: [{string.Join(", ", args)}] is not `simulate --listen HOST:PORT ...`");
            return;
        }

        string[] local = [.. args];
        local[listen + 1] = "127.0.0.1:0";
        await using var simulator = GatewayProcess.Start(local);
        try
        {
            await simulator.WaitForLineAsync("aotproxy simulate ready:", TimeSpan.FromSeconds(30));
        }
        catch (Xunit.Sdk.XunitException e)
        {
            problems.Add($"{where}: aotproxy {string.Join(' ', args)} did not start: {e.Message}");
            return;
        }

        simulator.SendSigterm();
        await simulator.WaitForExitAsync(TimeSpan.FromSeconds(15));
    }

    // The value after a flag in an argument list, or null.
    public static string? Flag(IReadOnlyList<string> args, string flag)
    {
        for (var i = 0; i + 1 < args.Count; i++)
        {
            if (args[i] == flag)
            {
                return args[i + 1];
            }
        }

        return null;
    }

    // "0.0.0.0:8000" or "http://sim-0:8000" -> 8000.
    public static int Port(string address) =>
        int.Parse(address[(address.LastIndexOf(':') + 1)..].TrimEnd('/'), NumberStyles.None, CultureInfo.InvariantCulture);

    // A container's path on the host: through the mount (container path -> host path) that holds
    // it, the longest first; null when no mount does.
    public static string? MapPath(string containerPath, IEnumerable<(string Container, string Host)> mounts)
    {
        foreach (var (container, host) in mounts.OrderByDescending(m => m.Container.Length))
        {
            var prefix = container.TrimEnd('/');
            if (containerPath == prefix)
            {
                return host;
            }

            if (containerPath.StartsWith(prefix + "/", StringComparison.Ordinal))
            {
                return System.IO.Path.Combine(host, containerPath[(prefix.Length + 1)..]);
            }
        }

        return null;
    }

    // A container's `sh SCRIPT ARGS...` run here with dash instead of busybox's sh (the script is
    // POSIX sh), its paths mapped onto the host.
    public static async Task<ToolRun?> RunShellAsync(
        string where, IReadOnlyList<string> command, IReadOnlyList<(string Container, string Host)> mounts, IReadOnlyDictionary<string, string?> environment, List<string> problems)
    {
        if (command is not ["sh", _, ..])
        {
            problems.Add($"{where}: the command [{string.Join(", ", command)}] is not `sh SCRIPT ...`; it cannot run here");
            return null;
        }

        var args = new List<string>();
        foreach (var arg in command.Skip(1))
        {
            var host = arg.StartsWith('/') ? MapPath(arg, mounts) : arg;
            if (host is null)
            {
                problems.Add($"{where}: {arg} is on no volume of the container");
                return null;
            }

            args.Add(host);
        }

        if (!File.Exists(args[0]))
        {
            problems.Add($"{where}: the script {command[1]} is not in the container ({args[0]} does not exist)");
            return null;
        }

        return await ToolRun.RunAsync("sh", args, environment);
    }

    // A property path in a JSON document, or null when any step is missing.
    public static JsonElement? Get(JsonElement element, params string[] path)
    {
        foreach (var name in path)
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out element))
            {
                return null;
            }
        }

        return element;
    }

    public static string? Text(JsonElement element, params string[] path) =>
        Get(element, path) is { ValueKind: JsonValueKind.String } value ? value.GetString() : Get(element, path)?.ToString();

    public static IEnumerable<JsonElement> Items(JsonElement element, params string[] path) =>
        Get(element, path) is { ValueKind: JsonValueKind.Array } array ? array.EnumerateArray() : [];

    public static string[] Strings(JsonElement element, params string[] path) => [.. Items(element, path).Select(i => i.ToString())];

    // matchLabels (or a Service's selector) all found among the labels.
    public static bool Selects(JsonElement? selector, JsonElement? labels) =>
        selector is { ValueKind: JsonValueKind.Object } s && s.EnumerateObject().Any()
        && s.EnumerateObject().All(p => labels is { ValueKind: JsonValueKind.Object } l && l.TryGetProperty(p.Name, out var v) && v.ToString() == p.Value.ToString());
}
