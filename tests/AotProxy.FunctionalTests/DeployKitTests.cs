using System.Security.Cryptography;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// deploy/ (README, "Deploying") checked without a container engine or a cluster, neither of
// which exists here: the Kubernetes manifests rendered offline by `kubectl kustomize`, the compose
// file read by `docker-compose config`, and what their containers would run (the config renderer,
// `check-config`, `simulate`) run here through the real binary, with every port and path checked
// against the config and the running gateway. The broken copies show that each check can fail.
public class DeployKitTests(DemoGatewayFixture demo) : IClassFixture<DemoGatewayFixture>
{
    [Fact]
    public async Task KubernetesBase_RendersOffline_AndMatchesTheBinary()
    {
        var (problems, _) = await KubernetesKitCheck.RunAsync(Kit(Fixtures.RepoRoot), "base", KubernetesKitCheck.BaseKinds);

        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public async Task ServiceMonitorOverlay_RendersTheBaseAServiceMonitorOnTheAdminPortAndTheAlertRules()
    {
        var (problems, _) = await KubernetesKitCheck.RunAsync(Kit(Fixtures.RepoRoot), "overlays/servicemonitor", [.. KubernetesKitCheck.BaseKinds, "ServiceMonitor", "PrometheusRule"]);

        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public async Task ComposeFleet_Parses_AndMatchesTheBinary()
    {
        var problems = await ComposeKitCheck.RunAsync(Kit(Fixtures.RepoRoot));

        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    // README's way to deploy: a copy of overlays/example with the operator's three files.
    [Fact]
    public async Task ExampleOverlay_WithAnOperatorsSecretFiles_RendersTheirTokenAndTenants()
    {
        using var copy = CopyKit();
        var kit = Kit(copy.Path);
        var overlay = Path.Combine(copy.Path, "deploy", "k8s", "overlays", "example");
        await File.WriteAllTextAsync(Path.Combine(overlay, "admin-token"), kit.AdminToken);
        await File.WriteAllTextAsync(Path.Combine(overlay, "postgres-url"), "postgres://aotproxy:s3cret@pg.llm:5432/aotproxy");
        await File.WriteAllTextAsync(Path.Combine(overlay, "tenants.toml"), "[[tenants]]\nname = \"acme\"\napi_key_sha256 = [\"" + Convert.ToHexStringLower(SHA256.HashData("sk-acme"u8)) + "\"]\n");

        var (problems, config) = await KubernetesKitCheck.RunAsync(kit, "overlays/example", KubernetesKitCheck.BaseKinds, placeholders: false);

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        Assert.Equal("acme", Assert.Single(config!.Tenants).Name);
    }

    // sed reads & in a replacement as the matched text, and | ends the script's s command: a URL
    // holding them must reach the file as written.
    [Fact]
    public async Task RenderConfig_PutsAUrlWithSedsSpecialCharactersInAsWritten()
    {
        using var output = new TempDirectory();
        const string Url = "postgres://aotproxy:p&w|d@pg:5432/aotproxy?sslmode=require&application_name=gw";

        var run = await RenderAsync(output.Path, new string('a', 64), Url);

        Assert.True(run.ExitCode == 0, run.Errors);
        Assert.Contains($"postgres_url = \"{Url}\"\n", await File.ReadAllTextAsync(Path.Combine(output.Path, "aotproxy.toml")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "postgres://pg/aotproxy", "AOTPROXY_ADMIN_TOKEN must be set")]
    [InlineData("0123456789abcdef0123456789abcde", "postgres://pg/aotproxy", "AOTPROXY_ADMIN_TOKEN must be set")]
    [InlineData("REPLACE_WITH_openssl_rand_hex_32_and_more_than_32", "postgres://pg/aotproxy", "AOTPROXY_ADMIN_TOKEN must be set")]
    [InlineData("0123456789abcdef0123456789abcdef", "postgres://pg/aot\"proxy", "POSTGRES_URL must not contain a quote")]
    public async Task RenderConfig_RefusesAShortOrPlaceholderTokenAndAQuotedUrl_AndWritesNothing(string token, string url, string expected)
    {
        using var output = new TempDirectory();

        var run = await RenderAsync(output.Path, token, url);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains(expected, run.Errors, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(output.Path));
    }

    // A copy of the kit (deploy/ and the Dockerfile) with one edit, which the check must report.
    [Theory]
    [InlineData("base", "deploy/k8s/base/deployment.yaml", "path: /ready", "path: /readyz", "/readyz is not an endpoint of the admin plane")]
    [InlineData("base", "deploy/k8s/base/deployment.yaml", "containerPort: 9090", "containerPort: 9091", "are not listen's (8080) and admin_listen's (9090)")]
    [InlineData("base", "deploy/k8s/base/aotproxy.toml", "admin_listen = \"0.0.0.0:9090\"", "admin_listen = \"0.0.0.0:9095\"", "readinessProbe probes port admin (9090), not admin_listen's 9095")]
    [InlineData("base", "deploy/k8s/base/service.yaml", "targetPort: admin", "targetPort: metrics", "a Service port targets no container port")]
    [InlineData("base", "deploy/k8s/base/deployment.yaml", "\"/etc/aotproxy/aotproxy.toml\"]", "\"/etc/aotproxy/other.toml\"]", "was not written")]
    [InlineData("base", "deploy/k8s/base/kustomization.yaml", "      - render-config.sh\n", "", "the script /template/render-config.sh is not in the container")]
    [InlineData("base", "deploy/k8s/base/kustomization.yaml", "admin-token=REPLACE_WITH_openssl_rand_hex_32", "admin-token=0123456789abcdef0123456789abcdef", "placeholder admin token")]
    [InlineData("base", "deploy/k8s/base/kustomization.yaml", "  - poddisruptionbudget.yaml\n", "", "base renders [")]
    [InlineData("base", "Dockerfile", "USER 1654:1654", "USER 1000:1000", "runAsUser 1000")]
    [InlineData("overlays/servicemonitor", "deploy/k8s/overlays/servicemonitor/servicemonitor.yaml", "port: admin", "port: http", "the ServiceMonitor scrapes the Service port http")]
    [InlineData("overlays/servicemonitor", "deploy/prometheus/rules.yml", "for: 2m", "for: 3m", "the PrometheusRule's spec.groups are not deploy/prometheus/rules.yml's groups")]
    [InlineData("overlays/servicemonitor", "deploy/k8s/overlays/servicemonitor/kustomization.yaml", "  - prometheusrule.yaml\n", "", "overlays/servicemonitor renders [")]
    [InlineData("compose", "deploy/compose/docker-compose.yml", "\"0.0.0.0:8000\", \"--model\", \"meta-llama/Llama-3.1-8B-Instruct\", \"--name\", \"sim-0\"", "\"0.0.0.0:8001\", \"--model\", \"meta-llama/Llama-3.1-8B-Instruct\", \"--name\", \"sim-0\"", "is not what service sim-0 serves")]
    [InlineData("compose", "deploy/compose/docker-compose.yml", "\"--name\", \"sim-1\"]", "\"--name\", \"sim-1\", \"--decode-rate\", \"50\"]", "service sim-1: aotproxy simulate")]
    [InlineData("compose", "deploy/compose/docker-compose.yml", "./haproxy.cfg:", "./haproxy.conf:", "haproxy.conf, which does not exist")]
    [InlineData("compose", "deploy/compose/docker-compose.yml", "hostname: gateway-1", "hostname: gateway-1\n    entrypoint: [\"/app/other\"]", "service gateway-1 overrides the image's entrypoint")]
    [InlineData("compose", "deploy/compose/docker-compose.yml", "dockerfile: Dockerfile", "dockerfile: Containerfile", "Containerfile, which does not exist")]
    [InlineData("compose", "deploy/compose/aotproxy.toml", "redis://redis:6379/0", "redis://valkey:6379/0", "service gateway-1 does not wait for valkey")]
    [InlineData("compose", "deploy/compose/docker-compose.yml", "@postgres:5432/aotproxy", "@db:5432/aotproxy", "service gateway-2 does not wait for db")]
    [InlineData("compose", "deploy/compose/aotproxy.toml", "url = \"http://sim-1:8000\"", "url = \"http://sim-2:8000\"", "points at sim-2")]
    [InlineData("compose", "deploy/compose/haproxy.cfg", "server gateway-2 gateway-2:8080", "server gateway-2 gateway-2:8081", "haproxy's server gateway-2 is gateway-2:8081")]
    [InlineData("compose", "deploy/compose/haproxy.cfg", "check port 9090", "check port 8080", "haproxy checks port [8080]")]
    [InlineData("compose", "deploy/compose/haproxy.cfg", "balance leastconn", "balance fewestconn", "haproxy -c:")]
    [InlineData("compose", "deploy/compose/prometheus.yml", "\"gateway-2:9090\"", "\"gateway-2:8080\"", "Prometheus scrapes gateway-2:8080")]
    [InlineData("compose", "deploy/compose/grafana/provisioning/datasources/prometheus.yml", "http://prometheus:9090", "http://prometheus:9092", "Grafana's datasource")]
    [InlineData("compose", "deploy/grafana/aotproxy.json", "llm_gateway_active_requests", "llm_gateway_active_request_count", "queries llm_gateway_active_request_count")]
    [InlineData("compose", "deploy/grafana/aotproxy.json", "\"llm_gateway_active_requests\"", "\"llm_gateway_active_requests_count\"", "queries llm_gateway_active_requests_count")]
    [InlineData("compose", "deploy/grafana/aotproxy.json", "llm_gateway_queue_wait_seconds_bucket", "llm_gateway_queue_wait_seconds_buckets", "queries llm_gateway_queue_wait_seconds_buckets")]
    [InlineData("compose", "deploy/compose/docker-compose.yml", "../grafana:/var/lib/grafana/dashboards", "./grafana:/var/lib/grafana/dashboards", "finds no dashboard")]
    [InlineData("compose", "deploy/compose/prometheus.yml", "  - /etc/prometheus/rules.yml", "  - /etc/prometheus/alerts.yml", "rule file /etc/prometheus/alerts.yml is not mounted")]
    [InlineData("compose", "deploy/compose/prometheus.yml", "rule_files:\n  - /etc/prometheus/rules.yml\n", "", "Prometheus loads no rule_files")]
    [InlineData("compose", "deploy/prometheus/rules.yml", "max by (worker) (llm_circuit_breaker_state) == 1", "max by (worker) (llm_circuit_breaker_state) === 1", "promtool check rules rules.yml")]
    [InlineData("compose", "deploy/prometheus/rules.yml", "max by (worker) (llm_circuit_breaker_state) == 1\n        for: 2m", "max by (worker) (llm_circuit_breaker_state) == 1\n        for: 10m", "promtool test rules rules_test.yml")]
    [InlineData("compose", "deploy/prometheus/rules.yml", "(llm_gateway_class_ttft_sla_seconds)", "(llm_gateway_class_ttft_slo_seconds)", "rule AotProxyClassTtftOverSla queries llm_gateway_class_ttft_slo_seconds")]
    public async Task BrokenCopy_FailsTheCheck(string check, string file, string from, string to, string expected)
    {
        using var copy = CopyKit();
        var edited = Path.Combine(copy.Path, file);
        var text = await File.ReadAllTextAsync(edited);
        Assert.Contains(from, text, StringComparison.Ordinal);
        await File.WriteAllTextAsync(edited, text.Replace(from, to, StringComparison.Ordinal));

        var kit = Kit(copy.Path);
        var problems = check switch
        {
            "compose" => await ComposeKitCheck.RunAsync(kit),
            "base" => (await KubernetesKitCheck.RunAsync(kit, check, KubernetesKitCheck.BaseKinds)).Problems,
            _ => (await KubernetesKitCheck.RunAsync(kit, check, [.. KubernetesKitCheck.BaseKinds, "ServiceMonitor", "PrometheusRule"])).Problems,
        };

        Assert.True(problems.Any(p => p.Contains(expected, StringComparison.Ordinal)), $"no problem says '{expected}'; the check found:\n{string.Join('\n', problems)}");
    }

    private DeployKit Kit(string root) => new(root, demo.AdminUri, demo.Http);

    // deploy/k8s/base/render-config.sh on the compose template, as the `config` service runs it.
    private static Task<ToolRun> RenderAsync(string output, string token, string url) =>
        ToolRun.RunAsync(
            "sh",
            [Path.Combine(Fixtures.RepoRoot, "deploy", "k8s", "base", "render-config.sh"), Path.Combine(Fixtures.RepoRoot, "deploy", "compose", "aotproxy.toml"), Path.Combine(output, "aotproxy.toml")],
            new Dictionary<string, string?> { ["AOTPROXY_ADMIN_TOKEN"] = token, ["POSTGRES_URL"] = url });

    private static TempDirectory CopyKit()
    {
        var copy = new TempDirectory();
        CopyDirectory(Path.Combine(Fixtures.RepoRoot, "deploy"), Path.Combine(copy.Path, "deploy"));
        File.Copy(Path.Combine(Fixtures.RepoRoot, "Dockerfile"), Path.Combine(copy.Path, "Dockerfile"));
        return copy;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (var directory in Directory.GetDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }
}
