using AotProxy.Load.Cli;

// aotproxy-load: an open-loop load runner for the gateway, in NBomber's spirit (see perf/LOAD.md).
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C stops the schedule and still writes the report of what ran.
    e.Cancel = true;
    stop.Cancel();
};

return await LoadCli.RunAsync(args, Console.Out, Console.Error, stop.Token);
