using System.Globalization;

namespace AotProxy.Cli;

// `aotproxy watch [--count N | --once] [--admin URL] [--token T]`: the fleet, the queues and the
// tenants, read again every second, like `top`. On a terminal each frame redraws the screen in
// place (the alternate screen, left on exit so the shell comes back as it was) until Ctrl-C or q;
// with stdout redirected each snapshot is plain text after the last, no escape codes, so that a
// log or a pipe reads it. --count bounds the snapshots (scripts, tests).
internal static class WatchCommand
{
    private const string Home = "\e[H\e[2J";
    private const string EnterScreen = "\e[?1049h\e[?25l";
    private const string LeaveScreen = "\e[?25h\e[?1049l";

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    public static async Task<int> RunAsync(CliArgs args, TextWriter output, TextWriter errors, bool terminal)
    {
        var unknown = args.FirstUnknownOption("admin", "token", "count", "once");
        if (unknown is not null || args.Positional.Count > 0)
        {
            await errors.WriteLineAsync(unknown is not null
                ? $"aotproxy watch: unknown option --{unknown}"
                : "usage: aotproxy watch [--count N | --once] [--admin URL] [--token T]").ConfigureAwait(false);
            return 2;
        }

        var count = args.Flag("once") ? 1 : int.MaxValue;
        if (args.Option("count") is { } text && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1))
        {
            await errors.WriteLineAsync($"aotproxy watch: --count must be a whole number of snapshots, at least 1 (got \"{text}\")").ConfigureAwait(false);
            return 2;
        }

        using var stop = new CancellationTokenSource();
        using var client = new AdminClient(args);
        if (!terminal)
        {
            return await LoopAsync(client, output, count, terminal, stop.Token).ConfigureAwait(false);
        }

        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        if (!Console.IsInputRedirected)
        {
            // ReadKey blocks a pool thread until a key; the process ends with it parked there.
            _ = Task.Run(() => QuitOnKey(stop), CancellationToken.None);
        }

        await output.WriteAsync(EnterScreen).ConfigureAwait(false);
        try
        {
            return await LoopAsync(client, output, count, terminal, stop.Token).ConfigureAwait(false);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
            await output.WriteAsync(LeaveScreen).ConfigureAwait(false);
            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    // One frame a second, count times or until stopped; 1 when the last frame could not read the API.
    private static async Task<int> LoopAsync(AdminClient client, TextWriter output, int count, bool terminal, CancellationToken stop)
    {
        var failed = false;
        for (var i = 0; i < count && !stop.IsCancellationRequested; i++)
        {
            if (i > 0)
            {
                try
                {
                    await Task.Delay(Interval, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            using var frame = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
            failed = !await FrameAsync(client, frame, terminal).ConfigureAwait(false);
            if (!terminal && i > 0)
            {
                await output.WriteLineAsync().ConfigureAwait(false);
            }

            await output.WriteAsync(terminal ? Home + frame : frame.ToString()).ConfigureAwait(false);
            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }

        return failed ? 1 : 0;
    }

    // false: a section could not be read (said in its place).
    private static async Task<bool> FrameAsync(AdminClient client, TextWriter frame, bool terminal)
    {
        var now = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        frame.WriteLine($"aotproxy watch  {client.BaseUrl}  {now}{(terminal ? "  (q or Ctrl-C quits)" : string.Empty)}");
        var ok = true;
        foreach (var (title, path) in new[] { ("workers", "/api/workers"), ("queues", "/api/queues"), ("tenants", "/api/tenants") })
        {
            frame.WriteLine();
            frame.WriteLine(title);
            if (await client.SendAsync(HttpMethod.Get, path, null, frame).ConfigureAwait(false) is not { } answer)
            {
                ok = false;
                continue;
            }

            if (!answer.Ok)
            {
                frame.WriteLine(AdminAnswer.Message(answer.Body));
                ok = false;
                continue;
            }

            using var json = AdminAnswer.TryParse(answer.Body);
            if (json is null || !AdminTables.TryWrite(title, frame, json.RootElement))
            {
                frame.WriteLine(AdminTables.NotTheApi(client.BaseUrl));
                ok = false;
            }
        }

        return ok;
    }

    private static void QuitOnKey(CancellationTokenSource stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (Console.ReadKey(intercept: true).KeyChar is 'q' or 'Q')
            {
                stop.Cancel();
            }
        }
    }
}
