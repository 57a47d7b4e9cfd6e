using System.Text;
using System.Text.Json;
using AotProxy.Configuration;

namespace AotProxy.FunctionalTests.Support;

// deploy/k8s/<kustomization> rendered offline by `kubectl kustomize`, then checked against the
// binary: the init container's script run here on the ConfigMap and the Secret as the pod would
// mount them, the config it writes through `aotproxy check-config`, and every port, probe and
// selector against that config and the running gateway's admin plane.
internal static class KubernetesKitCheck
{
    public static readonly string[] BaseKinds = ["ConfigMap", "Secret", "Service", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"];

    // placeholders: the Secret is the base's (its admin token a placeholder the init container
    // must refuse; the check then renders with a token of its own); otherwise an operator's, which
    // holds the kit's AdminToken.
    public static async Task<(List<string> Problems, GatewaySnapshot? Config)> RunAsync(DeployKit kit, string kustomization, IReadOnlyCollection<string> expectedKinds, bool placeholders = true)
    {
        var problems = new List<string>();
        var run = await ToolRun.RunAsync("kubectl", ["kustomize", kit.Path("deploy", "k8s", kustomization)]);
        if (run.ExitCode != 0)
        {
            problems.Add($"kubectl kustomize {kustomization}: {run.Errors.Trim()}");
            return (problems, null);
        }

        var (documents, error) = await Yaml.ParseAllAsync(run.Output);
        if (error is not null)
        {
            problems.Add($"kubectl kustomize {kustomization} printed YAML that does not parse: {error}");
            return (problems, null);
        }

        var kinds = documents.Select(d => DeployKit.Text(d, "kind")!).Order().ToArray();
        if (!kinds.SequenceEqual(expectedKinds.Order()))
        {
            problems.Add($"{kustomization} renders [{string.Join(", ", kinds)}], not [{string.Join(", ", expectedKinds.Order())}]");
            return (problems, null);
        }

        JsonElement One(string kind) => documents.Single(d => DeployKit.Text(d, "kind") == kind);
        JsonElement? Named(string kind, string? name) => documents.FirstOrDefault(d => DeployKit.Text(d, "kind") == kind && DeployKit.Text(d, "metadata", "name") == name) is { ValueKind: JsonValueKind.Object } found ? found : null;

        var deployment = One("Deployment");
        var pod = DeployKit.Get(deployment, "spec", "template")!.Value;
        var podLabels = DeployKit.Get(pod, "metadata", "labels");
        var spec = DeployKit.Get(pod, "spec")!.Value;
        var containers = DeployKit.Items(spec, "containers").ToArray();
        if (containers.Length != 1)
        {
            problems.Add($"the Deployment has {containers.Length} containers; the kit runs one gateway per pod");
            return (problems, null);
        }

        var gateway = containers[0];
        var (entrypoint, uid) = kit.Image();
        if (DeployKit.Get(gateway, "command") is not null && !DeployKit.Strings(gateway, "command").SequenceEqual(entrypoint))
        {
            problems.Add($"the gateway's command [{string.Join(", ", DeployKit.Strings(gateway, "command"))}] is not the image's entrypoint [{string.Join(", ", entrypoint)}]");
        }

        var args = DeployKit.Strings(gateway, "args");
        var configPath = DeployKit.Flag(args, "--config");
        if (args is not ["serve", ..] || configPath is null)
        {
            problems.Add($"the gateway's args [{string.Join(", ", args)}] are not `serve --config FILE`");
            return (problems, null);
        }

        // Each volume as a directory here, filled as the kubelet would.
        using var scratch = new TempDirectory();
        var volumes = new Dictionary<string, string>();
        foreach (var volume in DeployKit.Items(spec, "volumes"))
        {
            var name = DeployKit.Text(volume, "name")!;
            var directory = Directory.CreateDirectory(System.IO.Path.Combine(scratch.Path, "volumes", name)).FullName;
            volumes[name] = directory;
            if (DeployKit.Get(volume, "configMap") is { } configMap)
            {
                var source = Named("ConfigMap", DeployKit.Text(configMap, "name"));
                if (source is null)
                {
                    problems.Add($"volume {name}: no ConfigMap named {DeployKit.Text(configMap, "name")}");
                    continue;
                }

                WriteItems(directory, configMap, DeployKit.Get(source.Value, "data"), base64: false);
            }
            else if (DeployKit.Get(volume, "secret") is { } secret)
            {
                var source = Named("Secret", DeployKit.Text(secret, "secretName"));
                if (source is null)
                {
                    problems.Add($"volume {name}: no Secret named {DeployKit.Text(secret, "secretName")}");
                    continue;
                }

                WriteItems(directory, secret, DeployKit.Get(source.Value, "data"), base64: true);
            }
        }

        List<(string, string)> Mounts(JsonElement container) =>
            [.. DeployKit.Items(container, "volumeMounts")
                .Where(m => volumes.ContainsKey(DeployKit.Text(m, "name")!))
                .Select(m => (DeployKit.Text(m, "mountPath")!, volumes[DeployKit.Text(m, "name")!]))];

        foreach (var init in DeployKit.Items(spec, "initContainers"))
        {
            var where = $"init container {DeployKit.Text(init, "name")}";
            var environment = new Dictionary<string, string?>();
            foreach (var variable in DeployKit.Items(init, "env"))
            {
                var name = DeployKit.Text(variable, "name")!;
                if (DeployKit.Get(variable, "valueFrom", "secretKeyRef") is { } reference)
                {
                    var secret = Named("Secret", DeployKit.Text(reference, "name"));
                    var key = DeployKit.Text(reference, "key")!;
                    if (secret is null || DeployKit.Get(secret.Value, "data", key) is not { } value)
                    {
                        problems.Add($"{where}: env {name} refers to {DeployKit.Text(reference, "name")}/{key}, which the render does not hold");
                        continue;
                    }

                    environment[name] = Encoding.UTF8.GetString(Convert.FromBase64String(value.GetString()!));
                }
                else
                {
                    environment[name] = DeployKit.Text(variable, "value");
                }
            }

            var command = DeployKit.Strings(init, "command");
            if (placeholders)
            {
                var refused = await DeployKit.RunShellAsync(where, command, Mounts(init), environment, problems);
                if (refused is { ExitCode: 0 })
                {
                    problems.Add($"{where}: rendered a config with the Secret's placeholder admin token; it must refuse to");
                }

                environment["AOTPROXY_ADMIN_TOKEN"] = kit.AdminToken;
            }

            var rendered = await DeployKit.RunShellAsync(where, command, Mounts(init), environment, problems);
            if (rendered is { ExitCode: not 0 })
            {
                problems.Add($"{where}: exited {rendered.ExitCode}: {rendered.Errors.Trim()}");
            }
        }

        var configFile = DeployKit.MapPath(configPath, Mounts(gateway));
        if (configFile is null)
        {
            problems.Add($"the gateway's --config {configPath} is on none of its volumes");
            return (problems, null);
        }

        var config = await kit.CheckConfigAsync("the gateway", configFile, problems);
        if (config is null)
        {
            return (problems, null);
        }

        await CheckPodAsync(kit, config, gateway, spec, uid, problems);
        var ports = ContainerPorts(gateway);
        CheckService(One("Service"), podLabels, ports, config.Server, problems);
        if (!DeployKit.Selects(DeployKit.Get(One("PodDisruptionBudget"), "spec", "selector", "matchLabels"), podLabels))
        {
            problems.Add("the PodDisruptionBudget's selector does not select the Deployment's pods");
        }

        var target = DeployKit.Get(One("HorizontalPodAutoscaler"), "spec", "scaleTargetRef")!.Value;
        if (DeployKit.Text(target, "kind") != "Deployment" || DeployKit.Text(target, "name") != DeployKit.Text(deployment, "metadata", "name"))
        {
            problems.Add($"the HorizontalPodAutoscaler scales {DeployKit.Text(target, "kind")}/{DeployKit.Text(target, "name")}, not the Deployment");
        }

        if (kinds.Contains("ServiceMonitor"))
        {
            await CheckServiceMonitorAsync(kit, One("ServiceMonitor"), One("Service"), ports, config.Server, problems);
        }

        if (kinds.Contains("PrometheusRule"))
        {
            await CheckPrometheusRuleAsync(kit, One("PrometheusRule"), problems);
        }

        return (problems, config);
    }

    private static async Task CheckPodAsync(DeployKit kit, GatewaySnapshot config, JsonElement gateway, JsonElement spec, int uid, List<string> problems)
    {
        var ports = ContainerPorts(gateway);
        if (!ports.ContainsValue(config.Server.Listen.Port) || !ports.ContainsValue(config.Server.AdminListen.Port))
        {
            problems.Add($"the gateway's container ports [{string.Join(", ", ports.Values)}] are not listen's ({config.Server.Listen.Port}) and admin_listen's ({config.Server.AdminListen.Port})");
        }

        foreach (var (probe, path) in new[] { ("readinessProbe", "/ready"), ("livenessProbe", "/health") })
        {
            var get = DeployKit.Get(gateway, probe, "httpGet");
            if (get is null)
            {
                problems.Add($"the gateway has no {probe} (httpGet)");
                continue;
            }

            var port = Resolve(DeployKit.Get(get.Value, "port"), ports);
            if (port != config.Server.AdminListen.Port)
            {
                problems.Add($"{probe} probes port {DeployKit.Text(get.Value, "port")} ({port}), not admin_listen's {config.Server.AdminListen.Port}");
            }

            var probed = DeployKit.Text(get.Value, "path")!;
            if (probed != path)
            {
                problems.Add($"{probe} probes {probed}, not {path}");
            }

            await kit.CheckAdminPathAsync(probe, probed, problems);
        }

        // Distroless and non-root: the image's uid, a read-only root, and the ledger's directory
        // on a writable volume (the root file system is not).
        if (DeployKit.Text(spec, "securityContext", "runAsNonRoot") != "True" || DeployKit.Text(spec, "securityContext", "runAsUser") != uid.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            problems.Add($"the pod's securityContext must set runAsNonRoot and runAsUser {uid} (the Dockerfile's USER)");
        }

        if (DeployKit.Text(gateway, "securityContext", "readOnlyRootFilesystem") != "True")
        {
            problems.Add("the gateway's securityContext must set readOnlyRootFilesystem");
        }

        var ledger = System.IO.Path.GetDirectoryName(config.Ledger.Path);
        if (ledger is not null && !DeployKit.Items(gateway, "volumeMounts").Any(m => DeployKit.Text(m, "mountPath") == ledger && DeployKit.Text(m, "readOnly") != "True"))
        {
            problems.Add($"the ledger's directory {ledger} is not a writable volume of the gateway");
        }

        if (!int.TryParse(DeployKit.Text(spec, "terminationGracePeriodSeconds"), out var grace) || grace <= config.Server.ShutdownGrace.TotalSeconds)
        {
            problems.Add($"terminationGracePeriodSeconds must exceed shutdown_grace ({config.Server.ShutdownGrace.TotalSeconds} s)");
        }
    }

    private static void CheckService(JsonElement service, JsonElement? podLabels, Dictionary<string, int> ports, ServerModel server, List<string> problems)
    {
        if (!DeployKit.Selects(DeployKit.Get(service, "spec", "selector"), podLabels))
        {
            problems.Add("the Service's selector does not select the Deployment's pods");
        }

        var targets = DeployKit.Items(service, "spec", "ports").Select(p => Resolve(DeployKit.Get(p, "targetPort") ?? DeployKit.Get(p, "port"), ports)).ToArray();
        if (targets.Contains(null))
        {
            problems.Add("a Service port targets no container port of the gateway");
        }

        if (!targets.Contains(server.Listen.Port) || !targets.Contains(server.AdminListen.Port))
        {
            problems.Add($"the Service targets [{string.Join(", ", targets)}], not listen's {server.Listen.Port} and admin_listen's {server.AdminListen.Port}");
        }
    }

    private static async Task CheckServiceMonitorAsync(DeployKit kit, JsonElement monitor, JsonElement service, Dictionary<string, int> ports, ServerModel server, List<string> problems)
    {
        if (!DeployKit.Selects(DeployKit.Get(monitor, "spec", "selector", "matchLabels"), DeployKit.Get(service, "metadata", "labels")))
        {
            problems.Add("the ServiceMonitor's selector does not select the Service");
        }

        foreach (var endpoint in DeployKit.Items(monitor, "spec", "endpoints"))
        {
            var servicePort = DeployKit.Items(service, "spec", "ports").FirstOrDefault(p => DeployKit.Text(p, "name") == DeployKit.Text(endpoint, "port"));
            if (servicePort.ValueKind != JsonValueKind.Object || Resolve(DeployKit.Get(servicePort, "targetPort"), ports) != server.AdminListen.Port)
            {
                problems.Add($"the ServiceMonitor scrapes the Service port {DeployKit.Text(endpoint, "port")}, which is not admin_listen's {server.AdminListen.Port}");
            }

            await kit.CheckAdminPathAsync("the ServiceMonitor", DeployKit.Text(endpoint, "path") ?? "/metrics", problems);
        }
    }

    // The Operator's copy of the alert rules: the groups of deploy/prometheus/rules.yml, which the
    // compose check runs through promtool and against the gateway's metrics.
    private static async Task CheckPrometheusRuleAsync(DeployKit kit, JsonElement rule, List<string> problems)
    {
        var (documents, error) = await Yaml.ParseAllAsync(await File.ReadAllTextAsync(kit.Path("deploy", "prometheus", "rules.yml")));
        if (error is not null || DeployKit.Get(documents[0], "groups") is not { } groups)
        {
            problems.Add($"deploy/prometheus/rules.yml has no groups: {error}");
            return;
        }

        if (DeployKit.Get(rule, "spec", "groups") is not { } copied || !JsonElement.DeepEquals(copied, groups))
        {
            problems.Add("the PrometheusRule's spec.groups are not deploy/prometheus/rules.yml's groups");
        }
    }

    private static Dictionary<string, int> ContainerPorts(JsonElement container) =>
        DeployKit.Items(container, "ports").ToDictionary(p => DeployKit.Text(p, "name") ?? DeployKit.Text(p, "containerPort")!, p => DeployKit.Get(p, "containerPort")!.Value.GetInt32());

    // A port given by number or by the name of a container port.
    private static int? Resolve(JsonElement? port, Dictionary<string, int> ports) => port switch
    {
        { ValueKind: JsonValueKind.Number } number => number.GetInt32(),
        { ValueKind: JsonValueKind.String } name when ports.TryGetValue(name.GetString()!, out var value) => value,
        _ => null,
    };

    // A ConfigMap's or Secret's keys as files (only the listed items, when the volume lists them).
    private static void WriteItems(string directory, JsonElement volumeSource, JsonElement? data, bool base64)
    {
        var entries = data is { ValueKind: JsonValueKind.Object } d ? d.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!) : [];
        var items = DeployKit.Items(volumeSource, "items").Select(i => (DeployKit.Text(i, "key")!, DeployKit.Text(i, "path")!)).ToList();
        foreach (var (key, path) in items.Count > 0 ? items : [.. entries.Keys.Select(k => (k, k))])
        {
            if (entries.TryGetValue(key, out var value))
            {
                var file = System.IO.Path.Combine(directory, path);
                if (base64)
                {
                    File.WriteAllBytes(file, Convert.FromBase64String(value));
                }
                else
                {
                    File.WriteAllText(file, value);
                }
            }
        }
    }
}
