using System.Globalization;
using System.Net;
using System.Text;
using AotProxy.Configuration;
using AotProxy.Simulator;

namespace AotProxy.Cli;

// `aotproxy demo`: the embedded configs/demo.toml plus N simulated vLLM workers on loopback,
// uneven on purpose (speed factors differ) so routing and queueing have something to do.
internal static class DemoCommand
{
    public const string DemoKey = "sk-demo-key";
    private const string DemoModel = "meta-llama/Llama-3.1-8B-Instruct";

    public static async Task<int> RunAsync(CliArgs args)
    {
        if (!int.TryParse(args.Option("workers") ?? "2", NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count is < 1 or > 64)
        {
            Console.Error.WriteLine("--workers takes a number from 1 to 64");
            return 2;
        }

        using var loggerFactory = Logging.Create();
        var workers = new List<SimulatedWorker>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var options = new SimulatorOptions
                {
                    Name = $"gpu-{i}",
                    Model = DemoModel,
                    SpeedFactor = 1.0 + (0.25 * ((i % 3) - 1)), // 1.0, 1.25, 0.75, 1.0, ...
                };
                workers.Add(await SimulatedWorker.StartAsync(options, new IPEndPoint(IPAddress.Loopback, 0), loggerFactory).ConfigureAwait(false));
            }

            var loaded = ConfigLoader.Parse(DemoToml(workers), "<embedded demo.toml>", 1, TimeProvider.System);
            if (loaded.Snapshot is not { } snapshot)
            {
                CheckConfigCommand.PrintErrors("demo.toml", loaded.Errors);
                return 1;
            }

            if (!TryOverrideListen(args, ref snapshot))
            {
                return 2;
            }

            var store = new ConfigStore(snapshot, null, TimeProvider.System, loggerFactory.CreateLogger("AotProxy.Configuration"));
            return await GatewayRunner.RunAsync(store, watch: false, loggerFactory, host =>
            {
                PrintWelcome(host.DataUri, host.AdminUri, count, host.Ledger?.Path);
                return Task.CompletedTask;
            }).ConfigureAwait(false);
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static string DemoToml(IReadOnlyList<SimulatedWorker> workers)
    {
        var toml = new StringBuilder(ConfigLoader.ReadEmbedded(ConfigLoader.DemoResourceName));
        foreach (var worker in workers)
        {
            toml.Append(WorkerSection(worker));
        }

        return toml.ToString();
    }

    // The [[workers]] section that points the gateway at one simulated worker.
    public static string WorkerSection(SimulatedWorker worker) => string.Create(CultureInfo.InvariantCulture, $"""

        [[workers]]
        name = "{worker.Options.Name}"
        url = "{worker.BaseUri}"
        models = ["{worker.Options.Model}"]
        max_concurrency = {worker.Options.MaxNumSeqs}

        """);

    private static bool TryOverrideListen(CliArgs args, ref GatewaySnapshot snapshot)
    {
        var server = snapshot.Server;
        foreach (var (flag, isAdmin) in new[] { ("listen", false), ("admin-listen", true) })
        {
            if (args.Option(flag) is not { } text)
            {
                continue;
            }

            if (!ListenAddress.TryParse(text, out var endPoint, out var error))
            {
                Console.Error.WriteLine($"--{flag}: {error}");
                return false;
            }

            server = isAdmin ? server with { AdminListen = endPoint } : server with { Listen = endPoint };
        }

        snapshot = GatewaySnapshotFactory.WithServer(snapshot, server);
        return true;
    }

    private static void PrintWelcome(Uri data, Uri admin, int workers, string? ledger)
    {
        var baseUrl = data.ToString().TrimEnd('/');
        Console.WriteLine($"""

            AotProxy demo: {workers} simulated vLLM workers serving {DemoModel}.
            Dashboard (live, in a browser): {admin}dashboard
            Try it (API key {DemoKey}):

              curl -s {baseUrl}/v1/chat/completions -H 'Authorization: Bearer {DemoKey}' -H 'Content-Type: application/json' \
                -d '{"{"}"model":"{DemoModel}","messages":[{"{"}"role":"user","content":"Hello!"{"}"}],"max_tokens":32{"}"}'

              curl -sN {baseUrl}/v1/chat/completions -H 'Authorization: Bearer {DemoKey}' -H 'Content-Type: application/json' \
                -d '{"{"}"model":"{DemoModel}","messages":[{"{"}"role":"user","content":"Hello!"{"}"}],"max_tokens":32,"stream":true{"}"}'

              curl -s {admin}api/status      curl -s {admin}api/workers      curl -s {admin}metrics

            Usage goes to the ledger {ledger ?? "(off)"}: curl -s '{admin}api/usage?by=model',
            or, also after the demo: aotproxy usage --ledger {ledger ?? "PATH"} --by model

            Ctrl+C stops it.
            """);
    }
}
