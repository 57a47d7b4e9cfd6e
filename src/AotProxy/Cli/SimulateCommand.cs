using System.Globalization;
using AotProxy.Configuration;
using AotProxy.Simulator;

namespace AotProxy.Cli;

// `aotproxy simulate`: one simulated vLLM worker on its own, until SIGTERM or Ctrl+C. For
// benchmarks (perf/compare.sh uses it as the SSE backend) and for pointing any gateway at a
// stand-in vLLM without a GPU.
internal static class SimulateCommand
{
    public static async Task<int> RunAsync(CliArgs args)
    {
        if (!TryParse(args, out var options, out var endPoint, out var error))
        {
            Console.Error.WriteLine(error);
            return 2;
        }

        using var shutdown = new ShutdownSignal();
        using var loggerFactory = Logging.Create();
        SimulatedWorker worker;
        try
        {
            worker = await SimulatedWorker.StartAsync(options, endPoint, loggerFactory).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            // Kestrel reports a port in use as an IOException; say so in one line, not a stack trace.
            Console.Error.WriteLine($"aotproxy simulate: cannot listen on {endPoint}: {e.Message}");
            return 1;
        }

        try
        {
            // One parseable line on stdout, as `serve` prints: scripts and tests wait for it.
            Console.WriteLine($"aotproxy simulate ready: url={worker.BaseUri}");
            await shutdown.Task.ConfigureAwait(false);

            // 5 s: in-flight streams at the default 100 tok/s and 64 max tokens finish in under 1 s.
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await worker.StopAsync(grace.Token).ConfigureAwait(false);
        }
        finally
        {
            await worker.DisposeAsync().ConfigureAwait(false);
        }

        return 0;
    }

    internal static bool TryParse(CliArgs args, out SimulatorOptions options, out System.Net.IPEndPoint endPoint, out string error)
    {
        options = new SimulatorOptions();
        endPoint = null!;
        error = "";
        if (args.Positional.Count > 0)
        {
            error = $"simulate takes no positional argument (got \"{args.Positional[0]}\")";
            return false;
        }

        if (args.FirstUnknownOption("listen", "model", "name", "decode-tps", "prefill-tps", "max-num-seqs", "metrics") is { } unknown)
        {
            error = $"simulate has no option --{unknown}; see aotproxy --help";
            return false;
        }

        if (args.Option("listen") is not { } listen)
        {
            error = "--listen HOST:PORT is required (port 0: the OS picks one)";
            return false;
        }

        if (!ListenAddress.TryParse(listen, out var parsed, out var listenError))
        {
            error = $"--listen: {listenError}";
            return false;
        }

        endPoint = parsed;
        if (args.Option("model") is { } model)
        {
            if (string.IsNullOrWhiteSpace(model))
            {
                error = "--model must not be empty";
                return false;
            }

            options.Model = model;
        }

        if (args.Option("name") is { } name)
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                error = "--name must not be empty";
                return false;
            }

            options.Name = name;
        }

        if (!TryPositive(args, "decode-tps", options.DecodeTokensPerSecond, out var decode, ref error)
            || !TryPositive(args, "prefill-tps", options.PrefillTokensPerSecond, out var prefill, ref error))
        {
            return false;
        }

        options.DecodeTokensPerSecond = decode;
        options.PrefillTokensPerSecond = prefill;

        if (args.Option("max-num-seqs") is { } seqsText)
        {
            // 8192: MaxNumBatchedTokens' default, which must be at least MaxNumSeqs.
            if (!int.TryParse(seqsText, NumberStyles.None, CultureInfo.InvariantCulture, out var seqs) || seqs is < 1 or > 8192)
            {
                error = $"--max-num-seqs takes a number from 1 to 8192 (got \"{seqsText}\")";
                return false;
            }

            options.MaxNumSeqs = seqs;
        }

        switch (args.Option("metrics"))
        {
            case null or "v1":
                options.MetricsFormat = MetricsFormat.V1;
                break;
            case "v0":
                options.MetricsFormat = MetricsFormat.V0;
                break;
            case var other:
                error = $"--metrics takes v0 or v1 (got \"{other}\")";
                return false;
        }

        return true;
    }

    private static bool TryPositive(CliArgs args, string flag, double fallback, out double value, ref string error)
    {
        value = fallback;
        if (args.Option(flag) is not { } text)
        {
            return true;
        }

        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) || !(value > 0) || double.IsInfinity(value))
        {
            error = $"--{flag} takes a positive number of tokens per second (got \"{text}\")";
            return false;
        }

        return true;
    }
}
