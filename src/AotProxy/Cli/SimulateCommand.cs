using System.Globalization;
using AotProxy.Configuration;
using AotProxy.Hosting;
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
        catch (ListenFailedException e)
        {
            // One line, not a stack trace: "cannot listen on 127.0.0.1:8000: the address is already in use".
            Console.Error.WriteLine($"aotproxy simulate: {e.Message}");
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

        if (args.FirstUnknownOption("listen", "model", "name", "decode-tps", "prefill-tps", "max-num-seqs", "max-num-queued-reqs", "max-num-waiting", "max-num-queued-tokens", "num-gpu-blocks", "block-size",
                "max-num-batched-tokens", "speed", "metrics", "scheduling-policy", "rpm", "tpm", "otlp-traces-endpoint",
                "lora-modules", "max-loras", "lora-load-ms") is { } unknown)
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

        // A bounded waiting queue (absent: unbounded, as vLLM's): requests beyond it get 503, as
        // they do from a deployment that caps vLLM's queue. 1,048,576: far beyond any real cap.
        // --max-num-waiting is its earlier name.
        foreach (var flag in (ReadOnlySpan<string>)["max-num-queued-reqs", "max-num-waiting"])
        {
            if (args.Option(flag) is not null)
            {
                if (!TryInt(args, flag, 0, 1_048_576, 0, out var queued, ref error))
                {
                    return false;
                }

                options.MaxNumQueuedReqs = queued;
            }
        }

        // The same in prompt tokens waiting; 1 << 40: far beyond any real queue.
        if (args.Option("max-num-queued-tokens") is { } tokensText)
        {
            if (!long.TryParse(tokensText, NumberStyles.None, CultureInfo.InvariantCulture, out var tokens) || tokens > 1L << 40)
            {
                error = $"--max-num-queued-tokens takes a number from 0 to {1L << 40} (got \"{tokensText}\")";
                return false;
            }

            options.MaxNumQueuedTokens = tokens;
        }

        // perf/routing.sh builds a heterogeneous fleet from these: small KV budgets (a few hundred
        // blocks) and half-speed workers. 1,048,576 blocks x 16 tokens is far beyond any GPU's KV.
        if (!TryInt(args, "num-gpu-blocks", 1, 1_048_576, options.NumGpuBlocks, out var blocks, ref error)
            // vLLM's CUDA backends offer 8, 16 or 32; the simulator takes any size, and 256 bounds typos.
            || !TryInt(args, "block-size", 1, 256, options.BlockSize, out var blockSize, ref error)
            || !TryInt(args, "max-num-batched-tokens", 1, 1_048_576, options.MaxNumBatchedTokens, out var batched, ref error))
        {
            return false;
        }

        if (batched < options.MaxNumSeqs)
        {
            // vLLM refuses this too: every running sequence must be able to decode in one step.
            error = $"--max-num-batched-tokens ({batched}) must be at least --max-num-seqs ({options.MaxNumSeqs})";
            return false;
        }

        options.NumGpuBlocks = blocks;
        options.BlockSize = blockSize;
        options.MaxNumBatchedTokens = batched;

        if (!TryLora(args, options, ref error))
        {
            return false;
        }

        // A hosted API's limits: 429 above them (SimulatedRateLimit); the gateway's [[workers]] rpm/tpm
        // keys pace against exactly these. 1,000,000,000 is the gateway's own per-minute ceiling.
        if (!TryLong(args, "rpm", options.RequestsPerMinute, out var rpm, ref error)
            || !TryLong(args, "tpm", options.TokensPerMinute, out var tpm, ref error))
        {
            return false;
        }

        options.RequestsPerMinute = rpm;
        options.TokensPerMinute = tpm;

        if (args.Option("speed") is { } speedText)
        {
            // A multiplier on both prefill and decode rates: 0.5 is "the same model on a GPU half
            // as fast", which is what a heterogeneous fleet needs; 100x is already absurd.
            if (!double.TryParse(speedText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var speed) || !(speed > 0) || speed > 100)
            {
                error = $"--speed takes a factor above 0 and at most 100, e.g. 0.5 for half speed (got \"{speedText}\")";
                return false;
            }

            options.SpeedFactor = speed;
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

        switch (args.Option("scheduling-policy"))
        {
            case null or "fcfs":
                options.SchedulingPolicy = SchedulingPolicy.Fcfs;
                break;
            case "priority":
                options.SchedulingPolicy = SchedulingPolicy.Priority;
                break;
            case var other:
                error = $"--scheduling-policy takes fcfs or priority (got \"{other}\")";
                return false;
        }

        // vLLM's own flag: its request spans, continuing the caller's trace, to this OTLP/HTTP receiver.
        if (args.Option("otlp-traces-endpoint") is { } traces)
        {
            if (!OtlpUrl.TryParse(traces, out var url))
            {
                error = $"--otlp-traces-endpoint takes an http:// or https:// base URL such as http://127.0.0.1:4318 (got \"{traces}\")";
                return false;
            }

            options.OtlpTracesEndpoint = OtlpUrl.Traces(url);
        }

        return true;
    }

    // vLLM's --lora-modules (names here, comma-separated), --max-loras and the swap cost.
    // 1,024 adapter slots and a 10-minute load are beyond any real deployment.
    private static bool TryLora(CliArgs args, SimulatorOptions options, ref string error)
    {
        if (args.Option("lora-modules") is { } modules)
        {
            string[] names = [.. modules.Split(',', StringSplitOptions.TrimEntries)];
            if (names.Any(n => n.Length == 0) || names.Distinct(StringComparer.Ordinal).Count() != names.Length || names.Contains(options.Model))
            {
                error = $"--lora-modules takes distinct adapter names separated by commas, none the --model (got \"{modules}\")";
                return false;
            }

            options.LoraModules = [.. names];
        }

        if (!TryInt(args, "max-loras", 1, 1024, options.MaxLoras, out var maxLoras, ref error)
            || !TryInt(args, "lora-load-ms", 0, 600_000, (int)options.LoraLoad.TotalMilliseconds, out var loadMs, ref error))
        {
            return false;
        }

        options.MaxLoras = maxLoras;
        options.LoraLoad = TimeSpan.FromMilliseconds(loadMs);
        return true;
    }

    private static bool TryInt(CliArgs args, string flag, int min, int max, int fallback, out int value, ref string error)
    {
        value = fallback;
        if (args.Option(flag) is not { } text)
        {
            return true;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) || value < min || value > max)
        {
            error = $"--{flag} takes a number from {min} to {max} (got \"{text}\")";
            return false;
        }

        return true;
    }

    private static bool TryLong(CliArgs args, string flag, long fallback, out long value, ref string error)
    {
        value = fallback;
        if (args.Option(flag) is not { } text)
        {
            return true;
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) || value > 1_000_000_000)
        {
            error = $"--{flag} takes a number per minute from 0 (unlimited) to 1000000000 (got \"{text}\")";
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
