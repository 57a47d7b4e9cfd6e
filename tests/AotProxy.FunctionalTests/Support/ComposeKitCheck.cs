using System.Text.Json;
using System.Text.RegularExpressions;
using AotProxy.Configuration;

namespace AotProxy.FunctionalTests.Support;

// deploy/compose/docker-compose.yml as `docker-compose config` reads it (Debian's docker-compose:
// parsed, validated against the compose schema, interpolated; no engine needed), then checked
// against the binary and its own files: every file it mounts exists, every service it names is
// there, haproxy's config passes `haproxy -c`, the `config` service's script renders a config `aotproxy check-config` passes, each
// simulated worker's command starts the real simulator, and haproxy, Prometheus and Grafana
// reach the ports and paths the gateways serve, Prometheus's alert rules pass promtool's checks and
// unit tests, and the rules and the dashboard query only metrics the gateway exports.
internal static partial class ComposeKitCheck
{
    public static async Task<List<string>> RunAsync(DeployKit kit)
    {
        var problems = new List<string>();
        var directory = kit.Path("deploy", "compose");
        var run = await ToolRun.RunAsync(
            "docker-compose", ["--file", System.IO.Path.Combine(directory, "docker-compose.yml"), "config"],
            new Dictionary<string, string?> { ["AOTPROXY_ADMIN_TOKEN"] = kit.AdminToken, ["POSTGRES_PASSWORD"] = null, ["GRAFANA_ADMIN_PASSWORD"] = null },
            workingDirectory: directory);
        if (run.ExitCode != 0)
        {
            problems.Add($"docker-compose config: {run.Errors.Trim()}");
            return problems;
        }

        var (documents, error) = await Yaml.ParseAllAsync(run.Output);
        if (error is not null || documents.Length != 1)
        {
            problems.Add($"docker-compose config printed YAML that does not parse: {error}");
            return problems;
        }

        var services = DeployKit.Get(documents[0], "services")!.Value.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        using var scratch = new TempDirectory();
        var mounts = new Dictionary<string, List<(string Container, string Host)>>();
        foreach (var (name, service) in services)
        {
            mounts[name] = Mounts(name, service, scratch.Path, problems);
            problems.AddRange(DependsOn(service).Where(d => !services.ContainsKey(d)).Select(d => $"service {name} depends on {d}, which is not a service"));
            if (DeployKit.Text(service, "build", "context") is { } context)
            {
                var dockerfile = System.IO.Path.Combine(context, DeployKit.Text(service, "build", "dockerfile") ?? "Dockerfile");
                if (!File.Exists(dockerfile))
                {
                    problems.Add($"service {name} builds from {dockerfile}, which does not exist");
                }
            }
        }

        // The repository's image: built from its Dockerfile, run with its entrypoint.
        var (entrypoint, _) = kit.Image();
        var ours = services.Where(s => DeployKit.Text(s.Value, "build", "context") is { } context
            && System.IO.Path.GetFullPath(context) == System.IO.Path.GetFullPath(kit.Root) && (DeployKit.Text(s.Value, "build", "dockerfile") ?? "Dockerfile") == "Dockerfile").ToDictionary();
        foreach (var (name, service) in ours)
        {
            if (DeployKit.Get(service, "entrypoint") is not null && !DeployKit.Strings(service, "entrypoint").SequenceEqual(entrypoint))
            {
                problems.Add($"service {name} overrides the image's entrypoint [{string.Join(", ", entrypoint)}]");
            }
        }

        // What renders the gateways' config: the services that run a script (the `config` one).
        var renderers = services.Where(s => DeployKit.Strings(s.Value, "command") is ["sh", ..]).Select(s => s.Key).ToArray();
        var reached = new List<string>();
        foreach (var (name, service) in renderers.Select(r => (r, services[r])))
        {
            var environment = DeployKit.Get(service, "environment") is { ValueKind: JsonValueKind.Object } variables
                ? variables.EnumerateObject().ToDictionary(p => p.Name, p => (string?)p.Value.ToString())
                : [];
            if (environment.GetValueOrDefault("POSTGRES_URL") is { Length: > 0 } postgres)
            {
                reached.Add(new Uri(postgres).Host);
            }

            var rendered = await DeployKit.RunShellAsync($"service {name}", DeployKit.Strings(service, "command"), mounts[name], environment, problems);
            if (rendered is { ExitCode: not 0 })
            {
                problems.Add($"service {name} exited {rendered.ExitCode}: {rendered.Errors.Trim()}");
            }
        }

        var gateways = ours.Where(s => DeployKit.Strings(s.Value, "command") is ["serve", ..]).Select(s => s.Key).Order().ToArray();
        var simulators = ours.Where(s => DeployKit.Strings(s.Value, "command") is ["simulate", ..]).Select(s => s.Key).ToArray();
        if (gateways.Length != 2 || simulators.Length != 2)
        {
            problems.Add($"the fleet has gateways [{string.Join(", ", gateways)}] and simulated workers [{string.Join(", ", simulators)}]; the kit promises two of each");
        }

        GatewaySnapshot? config = null;
        foreach (var name in gateways)
        {
            var configPath = DeployKit.Flag(DeployKit.Strings(services[name], "command"), "--config");
            var file = configPath is null ? null : DeployKit.MapPath(configPath, mounts[name]);
            if (file is null)
            {
                problems.Add($"service {name}: --config {configPath} is on none of its volumes");
                continue;
            }

            // A gateway starts after its config is written and its stores answer.
            var waits = DependsOn(services[name]).ToHashSet();
            config = await kit.CheckConfigAsync($"service {name}", file, problems);
            if (config is not null)
            {
                var stores = config.Cluster.Store is { } redis ? reached.Append(redis.Host) : reached;
                problems.AddRange(renderers.Concat(stores).Where(d => !waits.Contains(d)).Select(d => $"service {name} does not wait for {d} (depends_on)"));

                foreach (var published in DeployKit.Strings(services[name], "ports").Select(ContainerPort).Where(p => p != config.Server.Listen.Port && p != config.Server.AdminListen.Port))
                {
                    problems.Add($"service {name} publishes container port {published}, which is neither listen's nor admin_listen's");
                }
            }
        }

        if (config is null)
        {
            return problems;
        }

        foreach (var name in simulators)
        {
            var args = DeployKit.Strings(services[name], "command");
            await kit.CheckSimulateAsync($"service {name}", args, problems);
            var listen = DeployKit.Flag(args, "--listen");
            var model = DeployKit.Flag(args, "--model");
            var workers = config.Workers.Where(w => w.Url.Host == name).ToArray();
            if (workers.Length == 0)
            {
                problems.Add($"service {name}: no [[workers]] entry of the gateways' config points at it");
            }

            foreach (var worker in workers.Where(w => listen is null || w.Url.Port != DeployKit.Port(listen) || !w.Models.Contains(model ?? "")))
            {
                problems.Add($"worker {worker.Name} ({worker.Url}, models [{string.Join(", ", worker.Models)}]) is not what service {name} serves (--listen {listen}, --model {model})");
            }
        }

        problems.AddRange(config.Workers.Where(w => !simulators.Contains(w.Url.Host)).Select(w => $"worker {w.Name} points at {w.Url.Host}, which is not a simulated worker of the fleet"));
        await CheckHaproxyAsync(kit, services, mounts, gateways, config.Server, problems);
        await CheckPrometheusAsync(kit, services, mounts, gateways, config.Server, problems);
        await CheckGrafanaAsync(kit, services, mounts, problems);
        return problems;
    }

    private static async Task CheckHaproxyAsync(
        DeployKit kit, Dictionary<string, JsonElement> services, Dictionary<string, List<(string Container, string Host)>> mounts, string[] gateways, ServerModel server, List<string> problems)
    {
        var (name, file) = ConfigOf(services, mounts, "haproxy", "/usr/local/etc/haproxy/haproxy.cfg", problems);
        if (file is null)
        {
            return;
        }

        // haproxy's own check (Debian's haproxy 2.6; the image runs 3.0): the file is valid, the
        // servers' names unresolvable here (init-addr none lets that pass, as at a cold start).
        var valid = await ToolRun.RunAsync("haproxy", ["-c", "-f", file]);
        if (valid.ExitCode != 0)
        {
            problems.Add($"haproxy -c: {valid.Errors.Trim()} {valid.Output.Trim()}");
        }

        // The directives this check reads, one per line, as haproxy reads them.
        var lines = File.ReadAllLines(file).Select(l => l.Split('#')[0].Trim()).Where(l => l.Length > 0).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
        var binds = lines.Where(l => l is ["bind", _, ..]).Select(l => DeployKit.Port(l[1])).ToArray();
        var published = DeployKit.Strings(services[name], "ports").Select(ContainerPort).ToArray();
        if (binds.Length == 0 || !binds.All(published.Contains))
        {
            problems.Add($"haproxy binds [{string.Join(", ", binds)}] but service {name} publishes [{string.Join(", ", published)}]");
        }

        var servers = lines.Where(l => l is ["server", _, _, ..]).ToArray();
        foreach (var line in servers)
        {
            var host = line[2][..line[2].LastIndexOf(':')];
            if (!gateways.Contains(host) || DeployKit.Port(line[2]) != server.Listen.Port)
            {
                problems.Add($"haproxy's server {line[1]} is {line[2]}, not a gateway service on listen's port {server.Listen.Port}");
            }
        }

        problems.AddRange(gateways.Where(g => !servers.Any(s => s[2].StartsWith(g + ":", StringComparison.Ordinal))).Select(g => $"haproxy has no server for {g}"));

        // The health check: on the admin port, at a path the admin plane serves.
        var checkPorts = lines.Where(l => l is ["default-server", ..] or ["server", ..]).Select(l => Array.IndexOf(l, "port") is var i and > 0 && i + 1 < l.Length ? l[i + 1] : null).OfType<string>().ToArray();
        if (checkPorts.Length == 0 || checkPorts.Any(p => p != server.AdminListen.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            problems.Add($"haproxy checks port [{string.Join(", ", checkPorts)}], not admin_listen's {server.AdminListen.Port}");
        }

        var check = lines.FirstOrDefault(l => l is ["option", "httpchk", _, _]);
        if (check is null)
        {
            problems.Add("haproxy has no `option httpchk GET PATH`");
        }
        else
        {
            await kit.CheckAdminPathAsync("haproxy's health check", check[3], problems);
        }
    }

    private static async Task CheckPrometheusAsync(
        DeployKit kit, Dictionary<string, JsonElement> services, Dictionary<string, List<(string Container, string Host)>> mounts, string[] gateways, ServerModel server, List<string> problems)
    {
        var (name, file) = ConfigOf(services, mounts, "prom/prometheus", "/etc/prometheus/prometheus.yml", problems);
        if (file is null)
        {
            return;
        }

        var (documents, error) = await Yaml.ParseAllAsync(await File.ReadAllTextAsync(file));
        if (error is not null)
        {
            problems.Add($"prometheus.yml does not parse: {error}");
            return;
        }

        var scraped = new HashSet<string>();
        foreach (var job in DeployKit.Items(documents[0], "scrape_configs"))
        {
            var targets = DeployKit.Items(job, "static_configs").SelectMany(c => DeployKit.Strings(c, "targets")).ToArray();
            var ofGateways = targets.Where(t => gateways.Contains(t[..t.LastIndexOf(':')])).ToArray();
            if (ofGateways.Length == 0)
            {
                continue;
            }

            foreach (var target in ofGateways)
            {
                scraped.Add(target[..target.LastIndexOf(':')]);
                if (DeployKit.Port(target) != server.AdminListen.Port)
                {
                    problems.Add($"Prometheus scrapes {target}, not the admin port {server.AdminListen.Port}");
                }
            }

            await kit.CheckAdminPathAsync($"Prometheus job {DeployKit.Text(job, "job_name")}", DeployKit.Text(job, "metrics_path") ?? "/metrics", problems);
        }

        problems.AddRange(gateways.Where(g => !scraped.Contains(g)).Select(g => $"Prometheus does not scrape {g}"));

        var ruleFiles = DeployKit.Strings(documents[0], "rule_files");
        if (ruleFiles.Length == 0)
        {
            problems.Add("Prometheus loads no rule_files (deploy/prometheus/rules.yml)");
        }

        foreach (var path in ruleFiles)
        {
            var rules = DeployKit.MapPath(path, mounts[name]);
            if (rules is null || !File.Exists(rules))
            {
                problems.Add($"Prometheus's rule file {path} is not mounted from the kit");
                continue;
            }

            await CheckRulesAsync(kit, rules, problems);
        }
    }

    // A rule file as Prometheus would load it (`promtool check rules`, Debian's prometheus), its
    // unit tests beside it (NAME_test.yml, `promtool test rules`) passing, and every metric its
    // expressions name exported by the gateway.
    private static async Task CheckRulesAsync(DeployKit kit, string rules, List<string> problems)
    {
        var check = await ToolRun.RunAsync("promtool", ["check", "rules", rules]);
        if (check.ExitCode != 0)
        {
            problems.Add($"promtool check rules {System.IO.Path.GetFileName(rules)}: {check.Output.Trim()} {check.Errors.Trim()}");
        }

        var tests = System.IO.Path.ChangeExtension(rules, null) + "_test.yml";
        if (!File.Exists(tests))
        {
            problems.Add($"{System.IO.Path.GetFileName(rules)} has no unit tests ({System.IO.Path.GetFileName(tests)} beside it)");
        }
        else
        {
            var test = await ToolRun.RunAsync("promtool", ["test", "rules", System.IO.Path.GetFileName(tests)], workingDirectory: System.IO.Path.GetDirectoryName(tests));
            if (test.ExitCode != 0)
            {
                problems.Add($"promtool test rules {System.IO.Path.GetFileName(tests)}: {test.Output.Trim()} {test.Errors.Trim()}");
            }
        }

        var (documents, error) = await Yaml.ParseAllAsync(await File.ReadAllTextAsync(rules));
        if (error is not null)
        {
            problems.Add($"{System.IO.Path.GetFileName(rules)} does not parse: {error}");
            return;
        }

        var exported = await kit.MetricsTextAsync();
        foreach (var rule in DeployKit.Items(documents[0], "groups").SelectMany(g => DeployKit.Items(g, "rules")))
        {
            var metrics = MetricName().Matches(DeployKit.Text(rule, "expr") ?? "").Select(m => m.Value).Distinct();
            problems.AddRange(metrics.Where(m => !MetricsText.Exports(exported, m)).Select(m => $"rule {DeployKit.Text(rule, "alert") ?? DeployKit.Text(rule, "record")} queries {m}, which the gateway does not export"));
        }
    }

    private static async Task CheckGrafanaAsync(
        DeployKit kit, Dictionary<string, JsonElement> services, Dictionary<string, List<(string Container, string Host)>> mounts, List<string> problems)
    {
        var (name, provisioning) = ConfigOf(services, mounts, "grafana/grafana", "/etc/grafana/provisioning", problems);
        if (provisioning is null)
        {
            return;
        }

        var prometheus = services.First(s => DeployKit.Text(s.Value, "image")!.StartsWith("prom/prometheus", StringComparison.Ordinal));
        var prometheusPort = DeployKit.Strings(prometheus.Value, "ports").Select(ContainerPort).FirstOrDefault(9090);
        foreach (var file in Directory.GetFiles(System.IO.Path.Combine(provisioning, "datasources")))
        {
            var (documents, _) = await Yaml.ParseAllAsync(await File.ReadAllTextAsync(file));
            foreach (var url in documents.SelectMany(d => DeployKit.Items(d, "datasources")).Select(d => new Uri(DeployKit.Text(d, "url")!)))
            {
                if (url.Host != prometheus.Key || url.Port != prometheusPort)
                {
                    problems.Add($"Grafana's datasource {url} is not service {prometheus.Key} on its port {prometheusPort}");
                }
            }
        }

        var dashboards = 0;
        var exported = await kit.MetricsTextAsync();
        foreach (var file in Directory.GetFiles(System.IO.Path.Combine(provisioning, "dashboards")))
        {
            var (documents, _) = await Yaml.ParseAllAsync(await File.ReadAllTextAsync(file));
            foreach (var path in documents.SelectMany(d => DeployKit.Items(d, "providers")).Select(p => DeployKit.Text(p, "options", "path")!))
            {
                var host = DeployKit.MapPath(path, mounts[name]);
                foreach (var dashboard in host is not null && Directory.Exists(host) ? Directory.GetFiles(host, "*.json") : [])
                {
                    dashboards++;
                    using var json = JsonDocument.Parse(await File.ReadAllTextAsync(dashboard));
                    var metrics = MetricName().Matches(json.RootElement.GetRawText()).Select(m => m.Value).Distinct();
                    problems.AddRange(metrics.Where(m => !MetricsText.Exports(exported, m)).Select(m => $"dashboard {System.IO.Path.GetFileName(dashboard)} queries {m}, which the gateway does not export"));
                }
            }
        }

        if (dashboards == 0)
        {
            problems.Add("Grafana's dashboard provider finds no dashboard in its mounted path");
        }
    }

    // Each volume of a service as host paths: a bind mount's file or directory (it must exist),
    // a named volume's directory here, shared by every service that mounts it.
    private static List<(string Container, string Host)> Mounts(string name, JsonElement service, string scratch, List<string> problems)
    {
        var mounts = new List<(string, string)>();
        foreach (var volume in DeployKit.Strings(service, "volumes"))
        {
            var parts = volume.Split(':');
            if (parts[0].StartsWith('/'))
            {
                if (!File.Exists(parts[0]) && !Directory.Exists(parts[0]))
                {
                    problems.Add($"service {name} mounts {parts[0]}, which does not exist");
                }

                mounts.Add((parts[1], parts[0]));
            }
            else
            {
                mounts.Add((parts[1], Directory.CreateDirectory(System.IO.Path.Combine(scratch, "volumes", parts[0])).FullName));
            }
        }

        return mounts;
    }

    // The service running an image and the host file (or directory) it mounts at a path.
    private static (string Service, string? File) ConfigOf(
        Dictionary<string, JsonElement> services, Dictionary<string, List<(string Container, string Host)>> mounts, string image, string path, List<string> problems)
    {
        var service = services.FirstOrDefault(s => DeployKit.Text(s.Value, "image")?.StartsWith(image, StringComparison.Ordinal) == true).Key;
        var file = service is null ? null : DeployKit.MapPath(path, mounts[service]);
        if (file is null || (!File.Exists(file) && !Directory.Exists(file)))
        {
            problems.Add($"no service runs {image} with {path} mounted from the kit");
            return (service ?? image, null);
        }

        return (service!, file);
    }

    // depends_on as a list of names or a map of name -> condition.
    private static IEnumerable<string> DependsOn(JsonElement service) => DeployKit.Get(service, "depends_on") switch
    {
        { ValueKind: JsonValueKind.Object } map => map.EnumerateObject().Select(p => p.Name),
        { ValueKind: JsonValueKind.Array } list => list.EnumerateArray().Select(e => e.GetString()!),
        _ => [],
    };

    // "127.0.0.1:9090:9090/tcp" -> 9090, the container's side.
    private static int ContainerPort(string mapping) => DeployKit.Port(mapping.Split('/')[0]);

    [GeneratedRegex(@"\bllm_[a-z_]+")]
    private static partial Regex MetricName();
}
