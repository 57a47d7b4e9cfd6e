using AotProxy.Cli;
using AotProxy.Gateway;
using AotProxy.Identity;

EventLoop.UseInlineCompletions();

var args2 = CliArgs.Parse(args);
if (args2.Error is { } error)
{
    Console.Error.WriteLine(error);
    return 2;
}

if (args2.Flag("version"))
{
    Console.WriteLine(typeof(CliArgs).Assembly.GetName().Version);
    return 0;
}

return args2.Command switch
{
    _ when args2.Flag("help") => Usage(Console.Out, 0),
    "serve" => await ServeCommand.RunAsync(args2).ConfigureAwait(false),
    "check-config" => CheckConfigCommand.Run(args2),
    "hash-key" when args2.Positional.Count == 1 => Print(ApiKeyIndex.HashKey(args2.Positional[0])),
    "demo" => await DemoCommand.RunAsync(args2).ConfigureAwait(false),
    "simulate" => await SimulateCommand.RunAsync(args2).ConfigureAwait(false),
    "usage" => UsageCommand.Run(args2, Console.Out, Console.Error),
    "tenants" => await TenantsCommand.RunAsync(args2, Console.Out, Console.Error).ConfigureAwait(false),
    "keys" => await KeysCommand.RunAsync(args2, Console.Out, Console.Error).ConfigureAwait(false),
    "audit" => await AuditCommand.RunAsync(args2, Console.Out, Console.Error).ConfigureAwait(false),
    "status" or "workers" or "queues" or "cluster" or "drain" or "undrain" => await AdminCommand.RunAsync(args2, Console.Out, Console.Error).ConfigureAwait(false),
    "health" => await HealthCommand.RunAsync(args2, Console.Out, Console.Error).ConfigureAwait(false),
    "watch" => await WatchCommand.RunAsync(args2, Console.Out, Console.Error, terminal: !Console.IsOutputRedirected).ConfigureAwait(false),
    "help" => Usage(Console.Out, 0),
    _ => Usage(Console.Error, 2),
};

static int Print(string line)
{
    Console.WriteLine(line);
    return 0;
}

static int Usage(TextWriter writer, int exitCode)
{
    writer.WriteLine("""
        usage:
          aotproxy [serve] [--config FILE]      run the gateway (default: configs/aotproxy.toml)
          aotproxy check-config FILE            validate; exit 0, or print every problem with its line
          aotproxy hash-key KEY                 print the sha256 to put in api_key_sha256
          aotproxy demo [--workers N] [--listen ADDR] [--admin-listen ADDR] [--otlp-endpoint URL]
                                                gateway + N simulated vLLM workers on loopback
          aotproxy simulate --listen HOST:PORT [--model NAME] [--name NAME] [--decode-tps N]
                   [--prefill-tps N] [--max-num-seqs N] [--max-num-queued-reqs N] [--metrics v0|v1] [--speed F]
                   [--max-num-queued-tokens N] [--num-gpu-blocks N] [--block-size N] [--max-num-batched-tokens N]
                   [--scheduling-policy fcfs|priority] [--rpm N] [--tpm N] [--otlp-traces-endpoint URL]
                   [--lora-modules A,B] [--max-loras N] [--lora-load-ms N]
                                                one simulated vLLM worker, until SIGTERM
          aotproxy status | workers | queues | cluster [--json]
                                                read the admin API (--admin URL, --token T): tables
                                                for people (cluster: JSON), --json for scripts
          aotproxy watch [--count N | --once]   live view of workers, queues and tenants, every second;
                                                q or Ctrl-C quits (redirected: one plain snapshot a second)
          aotproxy health                       exit 0 when GET /ready answers 200, else 1 and why on stderr
          aotproxy drain NAME | undrain NAME
          aotproxy tenants [list | create NAME | update NAME | delete NAME] [--class C] [--weight N] [--models a,b]
                   [--rpm N] [--tpm N] [--max-in-flight N] [--budget-tokens N] [--monthly-budget-tokens N]
                   [--budget-usd X] [--monthly-budget-usd X] [--environment E] [--json]
                                                runtime tenants (the tenant store), through the admin API
          aotproxy keys list TENANT | issue TENANT [--label L] [--expires-at T] [--window 09:00-17:00]
                   | revoke TENANT ID | rotate TENANT ID --valid-until T [--json]
                                                issue (shown once), list, revoke and rotate API keys
          aotproxy audit [--since D] [--limit N] [--json]
                                                who changed which tenant or key, when
          aotproxy usage [--since 2026-11-01] [--until 2026-11-30] [--by tenant|model|requested_model|day]
                   [--config FILE | --ledger PATH] [--json]
                                                usage from the ledger: requests, tokens, cost, errors
        """);
    return exitCode;
}
